r"""BYOL on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/byol.py --workdir=runs/fmnist_byol

BYOL: Grill et al., NeurIPS 2020 (official `deepmind-research/byol`):
predictor MLP, EMA target with τ from 0.99 to 1 along a cosine, symmetrised
2 − 2·cos loss.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "byol"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.predictor_hidden = c.model.projector_hidden
  c.model.predictor_dim = c.model.projector_dim
  c.model.use_target = True
  c.model.target_ema = 0.99
  c.loss.terms = {"byol": {"weight": 1.0}}
  return presets.finish(c, a)
