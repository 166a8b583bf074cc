r"""NNCLR on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/nnclr.py --workdir=runs/fmnist_nnclr

NNCLR: Dwibedi et al., ICCV 2021 (reference implementation
``vturrisi/solo-learn`` ``solo/methods/nnclr.py``): the nearest neighbour of
each projection in a support set of past projections is contrasted with the
other view's prediction, symmetrised; predictor MLP as wide as the
projector. Temperature 0.2 (solo-learn's CIFAR value; the paper's 0.1 is for
batch 4096); support set 8192 = 32 steps of batch 256 (our choice, as in
``configs/fashion_mnist/moco.py``).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "nnclr"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.model.predictor_hidden = c.model.projector_hidden
  c.model.predictor_dim = c.model.projector_dim
  c.loss.terms = {"nnclr": {"weight": 1.0, "queue_size": 8192, "temperature": 0.2}}
  return presets.finish(c, a)
