r"""LeJEPA-style objective (invariance + SIGReg) on Fashion-MNIST, CPU-sized (not tuned).

Run / smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/lejepa.py --workdir=runs/fmnist_lejepa
  python -m ssljax.main --config=configs/fashion_mnist/lejepa.py:runlocal --workdir=/tmp/smoke

LeJEPA (Balestriero & LeCun 2025; ``docs/methods/sigreg.md``), as in the
official ``MINIMAL.md``: ``(1 − λ)·inv + λ·SIGReg`` with λ = 0.02,
``inv = mean (z_v − mean_v z_v)²`` and a 16-dimensional projector; AdamW lr
2e-3, weight decay 5e-2. With two views ``inv`` is ¼ of VICReg's invariance
term, so it is written as the ``vicreg`` term with ``sim_coeff = (1 − λ)/4``
and no variance / covariance terms. Deviation: two views (MINIMAL.md: V = 4).
"""

from ssljax import config as config_lib
from ssljax import presets

LAMBDA = 0.02


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "lejepa"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.projector_dim = 16
  c.optim.name = "adamw"
  c.optim.base_lr = 2e-3
  c.optim.lr_scaling = "none"
  c.optim.weight_decay = 5e-2
  c.loss.terms = {"vicreg": {"weight": 1.0, "sim_coeff": (1 - LAMBDA) / 4, "std_coeff": 0.0,
                             "cov_coeff": 0.0},
                  "sigreg": {"weight": LAMBDA, "num_slices": 256}}
  c.eval.pixel_baseline = True
  return presets.finish(c, a)
