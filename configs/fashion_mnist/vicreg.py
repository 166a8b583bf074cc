r"""VICReg on Fashion-MNIST, CPU-sized.

Run (the Fashion-MNIST preset: ConvNet 64-128-256, batch 128; 10 epochs)::

  python -m ssljax.main --config=configs/fashion_mnist/vicreg.py --workdir=runs/fmnist_vicreg

Smoke run (seconds), + PID-SSL, or a shorter run; print the config only::

  python -m ssljax.main --config=configs/fashion_mnist/vicreg.py:runlocal --workdir=/tmp/smoke
  python -m ssljax.main --config=configs/fashion_mnist/vicreg.py:pid --workdir=runs/fmnist_vicreg_pid
  python -m ssljax.main --config=configs/fashion_mnist/vicreg.py:pid,epochs=3 --print_config

Measured before the preset's batch and crop changed (batch 256, crop area
U[0.2, 1], 10 epochs): linear probe 86.0 % vs 83.9 % on raw pixels.

VICReg: Bardes, Ponce & LeCun, ICLR 2022; coefficients 25/25/1 from the
official ``facebookresearch/vicreg`` defaults.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "vicreg"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"vicreg": {"weight": 1.0, "sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0}}
  c.eval.pixel_baseline = True
  c.eval.random_init_baseline = True
  return presets.finish(c, a)
