r"""VICReg with an entropy estimator in place of variance+covariance, on Fashion-MNIST.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/vicreg_entropy.py:estimator=logdet --workdir=runs/fmnist_vicreg_logdet
  python -m ssljax.main --config=configs/fashion_mnist/vicreg_entropy.py:estimator=pairwise_kl --workdir=runs/fmnist_vicreg_pkl

"What Do We Maximize in Self-Supervised Learning?" (Shwartz-Ziv et al. 2022)
and "An Information-Theoretic Perspective on VICReg" (NeurIPS 2023): the
LogDet and pairwise-distance (Kolchinsky–Tracey KL / Bhattacharyya) entropy
estimators replace VICReg's variance and covariance terms.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",), estimator="logdet")
  c = config_lib.base_config()
  c.method = f"vicreg_{a.estimator}"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"vicreg_entropy": {"weight": 1.0, "estimator": a.estimator}}
  if a.estimator != "logdet":  # recorded in config.json: σ's kernel default changed once
    c.loss.terms.vicreg_entropy.sigma = 1.0
  return presets.finish(c, a)
