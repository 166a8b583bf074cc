r"""Barlow Twins on CIFAR-100: the recipe of configs/cifar10/barlow_twins.py on CIFAR-100.

Table rows (experiments/paper_tables.md): solo-learn CIFAR-100 benchmark,
Barlow Twins 70.90 top-1 (online linear, 1000 epochs; anchors.md §1.3);
CorInfoMax Table 1's own Barlow Twins run on CIFAR-100 (number not recovered);
the PID-SSL paper's Barlow Twins baseline on CIFAR-100 (only the average gain
of +PID, +1.59 linear / +1.92 k-NN, is known).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar100/barlow_twins.py --workdir=runs/cifar100_barlow_twins
  python -m ssljax.main --config=configs/cifar100/barlow_twins.py --workdir=runs/cifar100_barlow_twins --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/barlow_twins.py`` (`presets.dataset_variant` changes only
the dataset and the view size): solo-learn runs its CIFAR-10 yaml on CIFAR-100
with only the dataset changed ("change here for cifar100"), as here.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/barlow_twins.py", arg, dataset="cifar100")
