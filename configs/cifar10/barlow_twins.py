r"""Barlow Twins on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, Barlow Twins
92.10 (CIFAR-10) / 70.90 (CIFAR-100) top-1 (online linear, 1000 epochs); the
baseline row of the PID-SSL paper (92.55 linear on CIFAR-10, third-party
summary) and, with ``:pid``, Barlow Twins + PID (93.97); CorInfoMax Table 1's
own Barlow Twins runs (numbers not recovered).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/barlow_twins.py --workdir=runs/cifar10_barlow
  python -m ssljax.main --config=configs/cifar10/barlow_twins.py --workdir=runs/cifar10_barlow --mode=evaluate
  python -m ssljax.main --config=configs/cifar10/barlow_twins.py:pid,dataset=cifar100 --workdir=runs/cifar100_barlow_pid

``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` run this recipe with only
the data changed (why: `presets.solo_learn`).

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/barlow.yaml``
(commit 78e2a67) and solo-learn's defaults (`presets.solo_learn`):

* ResNet-18, CIFAR stem (padding 2, no max-pool); projector
  512-2048-2048-2048 with BatchNorm;
* loss ``0.1 · [Σ(1 − C_ii)² + 0.0051 Σ_{i≠j} C_ij²]`` (``scale_loss`` 0.1,
  λ = 0.0051), C the cross-correlation of batch-standardised projections;
* LARS lr 0.3 × B/256, η = 0.02, wd 1e-4, batch 256, 10 warm-up epochs from
  3e-5, cosine to 0;
* views ``'cifar'`` (``asymmetric.yaml``: no blur, solarise 0.0 / 0.2).

Deviations: no LARS ``clip_lr``, float32; our augmentation ops; linear top-1
from our offline probe (solo-learn reports its online probe).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "barlow_twins"
  presets.solo_learn(c, base_lr=0.3, weight_decay=1e-4)
  presets.heads(c, "2048-2048-2048")
  c.loss.terms = {"barlow_twins": {"weight": 1.0, "lambd": 0.0051, "scale_loss": 0.1}}
  return presets.finish(c, a)
