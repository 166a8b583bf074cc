r"""CorInfoMax on Fashion-MNIST, CPU-sized: the embedded default job of ssljax (README command 1).

Run (a few minutes on a 2-core CPU; prints linear-probe and kNN top-1 on the
10k test images next to the same probes on raw pixels and on the random-init
encoder)::

  python -m ssljax.main --config=configs/fashion_mnist/corinfomax.py --workdir=runs/fmnist_corinfomax

Choose hyper-parameters on a validation split held out of the training
images, never on the test split; a longer run; a smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/corinfomax.py:val --workdir=runs/val
  python -m ssljax.main --config=configs/fashion_mnist/corinfomax.py:epochs=10 --workdir=runs/e10
  python -m ssljax.main --config=configs/fashion_mnist/corinfomax.py:runlocal --workdir=/tmp/smoke

The recipe (2 epochs, batch 128, crop area U[0.7, 1]) learned fastest of the
methods and variants tried on the validation split
(``experiments/demo_sweep.py``, ``experiments/results/demo_sweep.md``).

CorInfoMax: Ozsoy et al., NeurIPS 2022 (official `serdarozsoy/corinfomax-ssl`,
`cifars-tiny/loss.py`): α·MSE − [log det(R₁+εI) + log det(R₂+εI)]/D with EMA
covariances (λ = 0.01, ε = 1e-8), L2-normalised outputs, a projector without
BatchNorm and plain SGD without LR scaling, as in the official CIFAR runs
(α = 250 is the CIFAR-10 value).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=2.0, datasets=("fashion_mnist",))
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
  c.eval.pixel_baseline = True
  c.eval.random_init_baseline = True
  return presets.finish(c, a)
