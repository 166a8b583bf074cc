r"""VICReg + KoLeo regulariser on Fashion-MNIST, CPU-sized (not tuned).

Run / smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/vicreg_koleo.py --workdir=runs/fmnist_koleo
  python -m ssljax.main --config=configs/fashion_mnist/vicreg_koleo.py:runlocal --workdir=/tmp/smoke

The VICReg file's objective plus KoLeo with DINOv2's weight 0.1
(``koleo_loss_weight``; summed over the two views as in DINOv2,
``docs/methods/koleo.md``): an example of composing a regulariser with any
method through ``config.loss.terms``.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "vicreg+koleo"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"vicreg": {"weight": 1.0, "sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0},
                  "koleo": {"weight": 0.1}}
  c.eval.pixel_baseline = True
  return presets.finish(c, a)
