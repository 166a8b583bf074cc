r"""MMCR on Fashion-MNIST, CPU-sized (not tuned).

Run / smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/mmcr.py --workdir=runs/fmnist_mmcr
  python -m ssljax.main --config=configs/fashion_mnist/mmcr.py:runlocal --workdir=/tmp/smoke

MMCR (Yerxa et al., NeurIPS 2023; ``docs/methods/mmcr.md``) with two views
per image (the official CIFAR runs use ``--n_aug 40`` views of 32 images),
λ = 0 (official default), projector output 128 (official
``projector_dims=[512, 128]``) and Adam lr 1e-3 (official
``pretrain_cifar_stl.py``); the rest is the Fashion-MNIST preset.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "mmcr"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.projector_hidden = (512,)
  c.model.projector_dim = 128
  c.optim.name = "adam"
  c.optim.base_lr = 1e-3
  c.optim.lr_scaling = "none"
  c.loss.terms = {"mmcr": {"weight": 1.0, "lmbda": 0.0}}
  c.eval.pixel_baseline = True
  return presets.finish(c, a)
