r"""VICReg on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, VICReg 92.07
(CIFAR-10) / 68.54 (CIFAR-100) top-1 (online linear, 1000 epochs); the
VICReg baseline of "An Information-Theoretic Perspective on VICReg" (NeurIPS
2023) Table 1 and CorInfoMax Table 1's own VICReg runs (numbers not
retrieved); ``:pid`` (VICReg + PID) is not a row of the PID-SSL paper, added
for completeness.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/vicreg.py --workdir=runs/cifar10_vicreg
  python -m ssljax.main --config=configs/cifar10/vicreg.py --workdir=runs/cifar10_vicreg --mode=evaluate
  python -m ssljax.main --config=configs/cifar10/vicreg.py:dataset=cifar100 --workdir=runs/cifar100_vicreg

``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` run this recipe with only
the data changed (why: `presets.solo_learn`).

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/vicreg.yaml``
(commit e74719b) and solo-learn's defaults (`presets.solo_learn`):

* ResNet-18, CIFAR stem (padding 2, no max-pool); expander
  512-2048-2048-2048 with BatchNorm;
* coefficients sim 25, var 25, cov 1 in solo-learn's form, whose variance
  term is the SUM of the two branches (``solo/losses/vicreg.py``); ssljax's
  kernel uses the official form with the two branches AVERAGED
  (``facebookresearch/vicreg`` ``main_vicreg.py``), so the same loss is
  ``std_coeff = 50`` here;
* LARS lr 0.3 × B/256, η = 0.02, wd 1e-4, batch 256, 10 warm-up epochs from
  3e-5, cosine to 0;
* views ``'vicreg_cifar'`` (crop area U[0.2, 1], solarise 0.1, no blur).

Deviations: no LARS ``clip_lr``, float32; our augmentation ops; linear top-1
from our offline probe (solo-learn reports its online probe).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "vicreg"
  c.data.augmentation = "vicreg_cifar"
  presets.solo_learn(c, base_lr=0.3, weight_decay=1e-4)
  presets.heads(c, "2048-2048-2048")
  c.loss.terms = {"vicreg": {"weight": 1.0, "sim_coeff": 25.0, "std_coeff": 50.0,
                             "cov_coeff": 1.0}}
  return presets.finish(c, a)
