r"""SimCLR on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, SimCLR 90.74
(CIFAR-10) / 65.78 (CIFAR-100) top-1 (online linear, 1000 epochs); the
baseline rows of CorInfoMax Table 1 (91.80 / 88.42 5-NN on CIFAR-10, 66.83 /
56.56 on CIFAR-100, 48.84 / 32.86 on Tiny-ImageNet; recalled, W-MSE's recipe,
not this one) and of the PID-SSL paper (91.93 linear / 88.63 k-NN on
CIFAR-10; third-party summary); with ``:pid``, SimCLR + PID (93.27 / 91.03 on
CIFAR-10).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/simclr.py --workdir=runs/cifar10_simclr
  python -m ssljax.main --config=configs/cifar10/simclr.py --workdir=runs/cifar10_simclr --mode=evaluate
  python -m ssljax.main --config=configs/cifar10/simclr.py:dataset=tiny_imagenet --workdir=runs/tiny_simclr
  python -m ssljax.main --config=configs/cifar10/simclr.py:pid --workdir=runs/cifar10_simclr_pid

``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` run this recipe with only
the data changed (why: `presets.solo_learn`).

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/simclr.yaml``
(commit d155957) and the defaults of ``solo/args/pretrain.py`` /
``solo/methods/base.py`` (`presets.solo_learn`):

* ResNet-18, CIFAR stem (3x3/1 conv with padding 2, no max-pool);
  projector 512-2048-256 without BatchNorm (``solo/methods/simclr.py``);
* NT-Xent, temperature 0.2, averaged over the 2N anchors (``view_reduction='mean'``);
* LARS lr 0.4 × B/256, η = 0.02, wd 1e-4, batch 256, 10 warm-up epochs
  from 3e-5, cosine to 0;
* views ``'simclr'`` (``symmetric.yaml``: jitter 0.8/0.8/0.8/0.2, blur p 0.5).

Deviations: no LARS ``clip_lr``, float32 instead of mixed precision; our
crop / jitter / blur implementations (`ssljax.data.augment.paper_view_configs`);
linear top-1 from our offline probe on frozen features (solo-learn reports
its online probe).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "simclr"
  c.data.augmentation = "simclr"
  presets.solo_learn(c, base_lr=0.4, weight_decay=1e-4)
  presets.heads(c, "2048-256", bn=False)
  c.loss.terms = {"simclr": {"weight": 1.0, "temperature": 0.2, "view_reduction": "mean"}}
  return presets.finish(c, a)
