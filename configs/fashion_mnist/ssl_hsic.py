r"""SSL-HSIC (with target network) on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/ssl_hsic.py --workdir=runs/fmnist_hsic
  python -m ssljax.main --config=configs/fashion_mnist/ssl_hsic.py:no_target --workdir=runs/fmnist_hsic_nt

SSL-HSIC: Li et al., NeurIPS 2021 (official `deepmind/ssl_hsic`): L = γ·√HSIC(Z,Z)
− HSIC(Z,Y), γ = 3, IMQ kernel, 512 random Fourier features, K = 4 views
(two online predictions, two stop-gradient target projections), learned
kernel scale (Adam 3e-4 on the log-slope objective).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",), no_target=False)
  c = config_lib.base_config()
  c.method = "ssl_hsic" + ("_no_target" if a.no_target else "")
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.projector_last_bias = False
  if not a.no_target:
    c.model.predictor_hidden = c.model.projector_hidden
    c.model.predictor_dim = c.model.projector_dim
    c.model.use_target = True
    c.model.target_init = "independent"  # as in ssl_hsic/experiment.py
  c.loss.terms = {"ssl_hsic": {"weight": 1.0, "gamma": 3.0, "num_rff_features": 512,
                               "kernel": "imq", "estimator": "rff"}}
  return presets.finish(c, a)
