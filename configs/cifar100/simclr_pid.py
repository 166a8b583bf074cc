r"""SimCLR + PID-SSL on CIFAR-100 (baseline: configs/cifar100/simclr.py).

Paper: Mohamadi, Doretto & Adjeroh, "Rethinking Self-Supervised Learning
Within the Framework of Partial Information Decomposition" (arXiv 2412.02121),
CIFAR-100: only the average gain over the four baselines is known: +1.59
linear / +1.92 k-NN (third-party summary, unverified); research note
pid_superinfo_vicreg.md §1.2.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar100/simclr_pid.py --workdir=runs/cifar100_simclr_pid
  python -m ssljax.main --config=configs/cifar100/simclr_pid.py --workdir=runs/cifar100_simclr_pid --mode=evaluate

Method (`presets.pid_variant`, `ssljax/train/pid_ssl.py`): the baseline recipe
plus α(t)·[CE(g(h1), ŷ) + CE(g(h2), ŷ)] with k-means pseudo-labels ŷ (K = 100
classes) on un-augmented training images; 1000 epochs = 100 warm-up + 900
joint epochs, pseudo-labels refreshed every 100 epochs, α ramped 1e-5 → 1e-1
(the summary's CIFAR values; other lengths keep these 10 % proportions).
Unknown: the ramp shape, the head g, the clustering features and the paper's
baseline recipes.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.pid_variant("configs/cifar100/simclr.py", arg)
