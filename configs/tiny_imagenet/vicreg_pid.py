r"""VICReg + PID-SSL on Tiny-ImageNet (baseline: configs/tiny_imagenet/vicreg.py).

Paper: Mohamadi, Doretto & Adjeroh, "Rethinking Self-Supervised Learning
Within the Framework of Partial Information Decomposition" (arXiv 2412.02121),
Tiny-ImageNet: only the average gain over the four baselines is known: +1.38
linear / +2.51 k-NN (third-party summary, unverified); research note
pid_superinfo_vicreg.md §1.2.

VICReg is not one of the paper's four baselines: added for completeness.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/tiny_imagenet/vicreg_pid.py --workdir=runs/tiny_vicreg_pid
  python -m ssljax.main --config=configs/tiny_imagenet/vicreg_pid.py --workdir=runs/tiny_vicreg_pid --mode=evaluate

Method (`presets.pid_variant`, `ssljax/train/pid_ssl.py`): the baseline recipe
plus α(t)·[CE(g(h1), ŷ) + CE(g(h2), ŷ)] with k-means pseudo-labels ŷ (K = 200
classes) on un-augmented training images; 1000 epochs = 100 warm-up + 900
joint epochs, pseudo-labels refreshed every 100 epochs, α ramped 1e-5 → 1e-1
(the summary's CIFAR values; other lengths keep these 10 % proportions).
Unknown: the ramp shape, the head g, the clustering features and the paper's
baseline recipes.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.pid_variant("configs/tiny_imagenet/vicreg.py", arg)
