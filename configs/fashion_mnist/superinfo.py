r"""SuperInfo on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/superinfo.py --workdir=runs/fmnist_superinfo

SuperInfo (Yu 2024, "Leveraging Superfluous Information in Contrastive
Representation Learning"): −c_pred·I(z1;z2) (InfoNCE bound) + c₁·I(v1;z1|v2)
+ c₂·I(v2;z2|v1) (MIB KL bounds between the views' Gaussian posteriors, with
a learned variance head). The paper's coefficients are not known to us; the
values here are documented choices (see `ssljax/losses/superinfo.py`).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "superinfo"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.variance_head = True
  c.loss.terms = {"superinfo": {"weight": 1.0, "temperature": 0.2, "coef_predictive": 1.0,
                                "coef_superfluous1": 1e-3, "coef_superfluous2": 1e-3}}
  return presets.finish(c, a)
