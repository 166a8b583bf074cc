r"""BYOL on Tiny-ImageNet: the recipe of configs/cifar10/byol.py on Tiny-ImageNet.

Table rows (experiments/paper_tables.md): CorInfoMax Table 1 baseline
(Tiny-ImageNet): 51.00 / 36.24 5-NN (recalled, unverified; W-MSE's recipe, not
this one); the PID-SSL paper's BYOL baseline on Tiny-ImageNet (only the
average gain of +PID, +1.38 linear / +2.51 k-NN, is known).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/tiny_imagenet/byol.py --workdir=runs/tiny_byol
  python -m ssljax.main --config=configs/tiny_imagenet/byol.py --workdir=runs/tiny_byol --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/byol.py`` (`presets.dataset_variant` changes only the
dataset and the view size): no published Tiny-ImageNet recipe exists for this
method in solo-learn or in the papers' code, so this is OUR CHOICE: the
CIFAR-10 recipe unchanged (ResNet-18 with solo-learn's CIFAR stem, heads,
LARS, batch 256, 1000 epochs, views) on 64x64 images. For comparison, W-MSE's
Tiny-ImageNet runs (README) train 1000 epochs with Adam (lr 2e-3) and a
ResNet-18 whose 3x3 stem keeps the max-pool (model.py).
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/byol.py", arg, dataset="tiny_imagenet")
