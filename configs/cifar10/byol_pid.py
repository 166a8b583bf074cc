r"""byol + PID-SSL on CIFAR-10 (baseline: configs/cifar10/byol.py).

Paper: Mohamadi, Doretto & Adjeroh, "Rethinking Self-Supervised Learning
Within the Framework of Partial Information Decomposition" (arXiv
2412.02121), CIFAR-10 table: BYOL 91.81 linear / 89.39 k-NN → +PID 93.12 / 91.77
(numbers from a third-party summary of the paper, unverified; research note
pid_superinfo_vicreg.md §1.2).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/byol_pid.py --workdir=runs/cifar10_byol_pid
  python -m ssljax.main --config=configs/cifar10/byol_pid.py --workdir=runs/cifar10_byol_pid --mode=evaluate

Method (`presets.pid_variant`, `ssljax/train/pid_ssl.py`): the baseline
recipe plus α(t)·[CE(g(h1), ŷ) + CE(g(h2), ŷ)] with k-means pseudo-labels ŷ
(K = 10 classes) on un-augmented training images; 1000 epochs = 100 warm-up
+ 900 joint epochs, pseudo-labels refreshed every 100 epochs, α ramped 1e-5
→ 1e-1 (the summary's values; other lengths keep these 10 % proportions).
Unknown: the ramp shape, the head g, the clustering features and the paper's
baseline recipe (its baselines follow W-MSE's protocol; ours are solo-learn's).
"""

from ssljax import presets


def get_config(arg=None):
  return presets.pid_variant("configs/cifar10/byol.py", arg)
