r"""BYOL on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, BYOL 92.58
(CIFAR-10) / 70.46 (CIFAR-100) top-1 (online linear, 1000 epochs); the
baseline rows of CorInfoMax Table 1 (91.73 / 89.45 5-NN on CIFAR-10, 66.60 /
56.82 on CIFAR-100, 51.00 / 36.24 on Tiny-ImageNet; recalled, W-MSE's recipe,
not this one) and of the PID-SSL paper (91.81 linear / 89.39 k-NN on
CIFAR-10; third-party summary); with ``:pid``, BYOL + PID (93.12 / 91.77 on
CIFAR-10).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/byol.py --workdir=runs/cifar10_byol
  python -m ssljax.main --config=configs/cifar10/byol.py --workdir=runs/cifar10_byol --mode=evaluate
  python -m ssljax.main --config=configs/cifar10/byol.py:dataset=cifar100 --workdir=runs/cifar100_byol
  python -m ssljax.main --config=configs/cifar10/byol.py:pid --workdir=runs/cifar10_byol_pid

``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` run this recipe with only
the data changed (why: `presets.solo_learn`).

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
