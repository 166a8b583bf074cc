r"""SwAV on Fashion-MNIST with multi-crop 2x28 + 4x14, CPU-sized (not a paper row).

Run, or a seconds-long smoke run::

  python -m ssljax.main --config=configs/fashion_mnist/swav.py --workdir=runs/fmnist_swav
  python -m ssljax.main --config=configs/fashion_mnist/swav.py:runlocal --workdir=/tmp/smoke

SwAV: Caron et al., NeurIPS 2020; τ = 0.1, ε = 0.05 and 3 Sinkhorn
iterations from ``facebookresearch/swav`` ``main_swav.py``. OUR CHOICES for
28-pixel grayscale images (``docs/methods/swav.md``): views
``'multicrop_small'`` (2 global crops of 28, area U[0.14, 1], + 4 local crops
of 14, U[0.05, 0.14]; colour ops act on the single channel), K = 300
prototypes (the official 3000 serve 1000 ImageNet classes), prototypes frozen
for the first epoch (234 steps), no queue (10 epochs are too short for it to
pay off); the Fashion-MNIST preset's ConvNet and LARS.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "swav"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.data.augmentation = "multicrop_small"
  c.loss.terms = {"swav": {"weight": 1.0, "temperature": 0.1, "epsilon": 0.05,
                           "num_prototypes": 300, "freeze_prototypes_steps": 60000 // 256}}
  return presets.finish(c, a)
