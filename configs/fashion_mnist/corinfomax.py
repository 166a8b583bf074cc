r"""CorInfoMax on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/corinfomax.py --workdir=runs/fmnist_corinfomax

CorInfoMax: Ozsoy et al., NeurIPS 2022 (official `serdarozsoy/corinfomax-ssl`,
`cifars-tiny/loss.py`): α·MSE − [log det(R₁+εI) + log det(R₂+εI)]/D with EMA
covariances (λ = 0.01, ε = 1e-8), L2-normalised outputs, a projector without
BatchNorm and plain SGD without LR scaling, as in the official CIFAR runs
(α = 250 is the CIFAR-10 value).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "corinfomax"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.projector_bn = False
  c.model.projector_last_bias = False
  c.model.projector_dim = 64
  c.optim.name = "sgd"
  c.optim.base_lr = 0.5
  c.optim.lr_scaling = "none"
  c.optim.weight_decay = 1e-4
  c.optim.decay_all = True
  c.optim.warmup_start_lr = 3e-3
  c.loss.terms = {"corinfomax": {"weight": 1.0, "alpha": 250.0, "la_R": 0.01, "la_mu": 0.01,
                                 "eps": 1e-8}}
  return presets.finish(c, a)
