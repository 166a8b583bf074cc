r"""VICReg + entropy estimator on CIFAR-100: the recipe of configs/cifar10/vicreg_entropy.py on CIFAR-100.

Table rows (experiments/paper_tables.md): Shwartz-Ziv et al., NeurIPS 2023,
Table 1 (CIFAR-100): VICReg + LogDet / PairDist rows; numbers NOT retrieved
(research note pid_superinfo_vicreg.md §3.3).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar100/vicreg_entropy.py:estimator=logdet --workdir=runs/cifar100_vicreg_logdet
  python -m ssljax.main --config=configs/cifar100/vicreg_entropy.py:estimator=pairwise_kl --workdir=runs/cifar100_vicreg_pkl
  python -m ssljax.main --config=configs/cifar100/vicreg_entropy.py:estimator=pairwise_bhattacharyya --workdir=runs/cifar100_vicreg_pbh
  python -m ssljax.main --config=configs/cifar100/vicreg_entropy.py:estimator=logdet --workdir=runs/cifar100_vicreg_logdet --mode=evaluate

Hyper-parameters: every value, source and deviation is that of
``configs/cifar10/vicreg_entropy.py`` (`presets.dataset_variant` changes only
the dataset and the view size): solo-learn runs its CIFAR-10 yaml on CIFAR-100
with only the dataset changed ("change here for cifar100"), as here.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.dataset_variant("configs/cifar10/vicreg_entropy.py", arg, dataset="cifar100")
