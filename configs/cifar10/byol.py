r"""BYOL on CIFAR-10, ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn CIFAR-10 benchmark, BYOL
92.58 top-1 (online linear, 1000 epochs; anchors.md §1.3); the baseline rows
of the PID-SSL paper (BYOL 91.81 linear / 89.39 k-NN, third-party summary)
and of CorInfoMax Table 1 (91.73 / 89.45 5-NN, recalled; W-MSE's recipe).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/byol.py --workdir=runs/cifar10_byol
  python -m ssljax.main --config=configs/cifar10/byol.py --workdir=runs/cifar10_byol --mode=evaluate

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/byol.yaml``
(commit 6286947) and solo-learn's defaults (`presets.solo_learn`):

* ResNet-18, CIFAR stem (padding 2, no max-pool); projector 512-4096-256
  and predictor 256-4096-256, both with BatchNorm;
* symmetrised 2 − 2·cos loss (sum of both directions), EMA target τ 0.99 → 1
  (cosine, per step);
* LARS lr 1.0 × B/256, η = 0.02, wd 1e-5, batch 256, 10 warm-up epochs
  from 3e-5, cosine to 0;
* views ``'cifar'`` (``asymmetric.yaml``: no blur, solarise 0.0 / 0.2).

Deviations: no LARS ``clip_lr``, float32; our augmentation ops; linear top-1
from our offline probe (solo-learn reports its online probe).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "byol"
  presets.solo_learn(c, base_lr=1.0, weight_decay=1e-5)
  presets.heads(c, "4096-256", predictor="4096-256")
  presets.ema_target(c, 0.99)
  c.loss.terms = {"byol": {"weight": 1.0}}
  return presets.finish(c, a)
