r"""Supervised upper bound on Fashion-MNIST: the same encoder, views and budget, trained on labels.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/supervised.py --workdir=runs/fmnist_supervised

Not an SSL method: the reference row of `experiments/fashion_mnist_table.py`.
Each of the two augmented views is classified by a linear head on the backbone
embedding with cross-entropy on the true label (the ``supervised`` term); the
projector exists but receives no gradient. Evaluation is the same frozen-feature
linear probe and kNN as for the SSL methods, so the row bounds what the probe
can read from this encoder at this budget.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "supervised"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"supervised": {"weight": 1.0}}
  return presets.finish(c, a)
