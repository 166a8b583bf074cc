r"""BYOL on CIFAR-100: the recipe of configs/cifar10/byol.py on CIFAR-100.

Table rows (experiments/paper_tables.md): solo-learn CIFAR-100 benchmark, BYOL
70.46 top-1 (online linear, 1000 epochs; anchors.md §1.3); CorInfoMax Table 1
baseline (CIFAR-100): 66.60 / 56.82 5-NN (recalled, unverified; W-MSE's
recipe, not this one); the PID-SSL paper's BYOL baseline on CIFAR-100 (only
the average gain of +PID, +1.59 linear / +1.92 k-NN, is known).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar100/byol.py --workdir=runs/cifar100_byol
  python -m ssljax.main --config=configs/cifar100/byol.py --workdir=runs/cifar100_byol --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/byol.py`` (`presets.dataset_variant` changes only the
dataset and the view size): solo-learn runs its CIFAR-10 yaml on CIFAR-100
with only the dataset changed ("change here for cifar100"), as here.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/byol.py", arg, dataset="cifar100")
