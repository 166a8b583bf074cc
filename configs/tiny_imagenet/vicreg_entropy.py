r"""VICReg + entropy estimator on Tiny-ImageNet: the recipe of configs/cifar10/vicreg_entropy.py on Tiny-ImageNet.

Table rows (experiments/paper_tables.md): Shwartz-Ziv et al., NeurIPS 2023,
Table 1 (Tiny-ImageNet): VICReg + LogDet / PairDist rows; numbers NOT
retrieved (research note pid_superinfo_vicreg.md §3.3).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/tiny_imagenet/vicreg_entropy.py:estimator=logdet --workdir=runs/tiny_vicreg_logdet
  python -m ssljax.main --config=configs/tiny_imagenet/vicreg_entropy.py:estimator=pairwise_kl --workdir=runs/tiny_vicreg_pkl
  python -m ssljax.main --config=configs/tiny_imagenet/vicreg_entropy.py:estimator=pairwise_bhattacharyya --workdir=runs/tiny_vicreg_pbh
  python -m ssljax.main --config=configs/tiny_imagenet/vicreg_entropy.py:estimator=logdet --workdir=runs/tiny_vicreg_logdet --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/vicreg_entropy.py`` (`presets.dataset_variant` changes only
the dataset and the view size): no published Tiny-ImageNet recipe exists for
this method in solo-learn or in the papers' code, so this is OUR CHOICE: the
CIFAR-10 recipe unchanged (ResNet-18 with solo-learn's CIFAR stem, heads,
LARS, batch 256, 1000 epochs, views) on 64x64 images. For comparison, W-MSE's
Tiny-ImageNet runs (README) train 1000 epochs with Adam (lr 2e-3) and a
ResNet-18 whose 3x3 stem keeps the max-pool (model.py).
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/vicreg_entropy.py", arg, dataset="tiny_imagenet")
