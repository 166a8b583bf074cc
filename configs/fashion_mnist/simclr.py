r"""SimCLR (NT-Xent) on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/simclr.py --workdir=runs/fmnist_simclr

SimCLR: Chen et al., ICML 2020 (official `google-research/simclr`). The
temperature is 0.2 here (solo-learn's CIFAR value) instead of the ImageNet
default 0.1 of the official code, because the batch is small (256).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "simclr"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"simclr": {"weight": 1.0, "temperature": 0.2}}
  return presets.finish(c, a)
