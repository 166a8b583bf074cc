r"""Alignment + uniformity (Wang & Isola 2020) on Fashion-MNIST, CPU-sized (not tuned).

Run / smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/align_uniform.py --workdir=runs/fmnist_au
  python -m ssljax.main --config=configs/fashion_mnist/align_uniform.py:runlocal --workdir=/tmp/smoke

``L_align(α=2) + 1 · L_uniform(t=2)`` (the official ``SsnL/align_uniform``
example weights; ``docs/methods/hypersphere.md``) on the projector outputs,
with the Fashion-MNIST preset's encoder and optimiser.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "align_uniform"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.loss.terms = {"alignment": {"weight": 1.0, "alpha": 2.0},
                  "uniformity": {"weight": 1.0, "t": 2.0}}
  c.eval.pixel_baseline = True
  return presets.finish(c, a)
