r"""W-MSE 2 on Fashion-MNIST, CPU-sized (not tuned; no measured numbers yet).

Run / smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/wmse.py --workdir=runs/fmnist_wmse
  python -m ssljax.main --config=configs/fashion_mnist/wmse.py:runlocal --workdir=/tmp/smoke

W-MSE (Ermolov et al., ICML 2021; ``docs/methods/wmse.md``) with the official
CIFAR settings where they fit: embedding 64, sub-batches of 128 (> 64, so
each sub-batch covariance is full rank), one whitening iteration, Adam lr
3e-3 not scaled by the batch; the rest is the Fashion-MNIST preset.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "wmse"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.projector_dim = 64
  c.optim.name = "adam"
  c.optim.base_lr = 3e-3
  c.optim.lr_scaling = "none"
  c.loss.terms = {"wmse": {"weight": 1.0, "w_size": 128, "w_iter": 1}}
  c.eval.pixel_baseline = True
  return presets.finish(c, a)
