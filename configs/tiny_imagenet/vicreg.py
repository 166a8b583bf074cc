r"""VICReg on Tiny-ImageNet: the recipe of configs/cifar10/vicreg.py on Tiny-ImageNet.

Table rows (experiments/paper_tables.md): CorInfoMax Table 1's own VICReg run
on Tiny-ImageNet (number not recovered); the VICReg baseline of Shwartz-Ziv et
al. (NeurIPS 2023) Table 1 on Tiny-ImageNet (not retrieved).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/tiny_imagenet/vicreg.py --workdir=runs/tiny_vicreg
  python -m ssljax.main --config=configs/tiny_imagenet/vicreg.py --workdir=runs/tiny_vicreg --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/vicreg.py`` (`presets.dataset_variant` changes only the
dataset and the view size): no published Tiny-ImageNet recipe exists for this
method in solo-learn or in the papers' code, so this is OUR CHOICE: the
CIFAR-10 recipe unchanged (ResNet-18 with solo-learn's CIFAR stem, heads,
LARS, batch 256, 1000 epochs, views) on 64x64 images. For comparison, W-MSE's
Tiny-ImageNet runs (README) train 1000 epochs with Adam (lr 2e-3) and a
ResNet-18 whose 3x3 stem keeps the max-pool (model.py).
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/vicreg.py", arg, dataset="tiny_imagenet")
