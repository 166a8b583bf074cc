r"""VICReg on CIFAR-100: the recipe of configs/cifar10/vicreg.py on CIFAR-100.

Table rows (experiments/paper_tables.md): solo-learn CIFAR-100 benchmark,
VICReg 68.54 top-1 (online linear, 1000 epochs; anchors.md §1.3); CorInfoMax
Table 1's own VICReg run on CIFAR-100 (number not recovered); the VICReg
baseline of Shwartz-Ziv et al. (NeurIPS 2023) Table 1 on CIFAR-100 (not
retrieved).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar100/vicreg.py --workdir=runs/cifar100_vicreg
  python -m ssljax.main --config=configs/cifar100/vicreg.py --workdir=runs/cifar100_vicreg --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/vicreg.py`` (`presets.dataset_variant` changes only the
dataset and the view size): solo-learn runs its CIFAR-10 yaml on CIFAR-100
with only the dataset changed ("change here for cifar100"), as here.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/vicreg.py", arg, dataset="cifar100")
