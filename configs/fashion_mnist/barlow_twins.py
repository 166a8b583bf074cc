r"""Barlow Twins on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/barlow_twins.py --workdir=runs/fmnist_barlow

Barlow Twins: Zbontar et al., ICML 2021 (official `facebookresearch/barlowtwins`):
λ = 0.0051, cross-correlation of batch-standardised embeddings.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "barlow_twins"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"barlow_twins": {"weight": 1.0, "lambd": 0.0051}}
  return presets.finish(c, a)
