r"""NNCLR on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, NNCLR 91.88
(CIFAR-10) / 69.62 (CIFAR-100) top-1 (online linear, 1000 epochs).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/nnclr.py --workdir=runs/cifar10_nnclr
  python -m ssljax.main --config=configs/cifar10/nnclr.py --workdir=runs/cifar10_nnclr --mode=evaluate
  python -m ssljax.main --config=configs/cifar10/nnclr.py:dataset=cifar100 --workdir=runs/cifar100_nnclr

``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` run this recipe with only
the data changed (why: `presets.solo_learn`).

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/nnclr.yaml``
(commit 1df0b89), ``solo/methods/nnclr.py`` and solo-learn's defaults
(`presets.solo_learn`):

* ResNet-18, CIFAR stem (padding 2, no max-pool); projector
  512-2048-2048-256 and predictor 256-4096-256, BatchNorm after the hidden
  layers;
* NNCLR loss with temperature 0.2 and a support set of 65536;
* LARS lr 0.4 × B/256, η = 0.02, wd 1e-5, batch 256, 10 warm-up epochs
  from 3e-5, cosine to 0;
* views ``'cifar'`` (``asymmetric.yaml``).

Deviations: solo-learn's projector also ends with a BatchNorm (ours has no
BatchNorm on the output); the support set starts empty (solo-learn: random
unit vectors, ``docs/methods/nnclr.md``); no LARS ``clip_lr``, float32; our
offline linear probe (solo-learn reports its online probe).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "nnclr"
  presets.solo_learn(c, base_lr=0.4, weight_decay=1e-5)
  presets.heads(c, "2048-2048-256", predictor="4096-256")
  c.loss.terms = {"nnclr": {"weight": 1.0, "queue_size": 65536, "temperature": 0.2}}
  return presets.finish(c, a)
