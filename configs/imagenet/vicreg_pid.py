r"""VICReg + PID-SSL on ImageNet-1K (baseline: configs/imagenet/vicreg.py).

Paper: Mohamadi, Doretto & Adjeroh, "Rethinking Self-Supervised Learning
Within the Framework of Partial Information Decomposition" (arXiv 2412.02121),
ImageNet-1K: only the average gain over the four baselines is known: +1.55
linear / +2.97 k-NN (third-party summary, unverified); research note
pid_superinfo_vicreg.md §1.2.

VICReg is not one of the paper's four baselines: added for completeness.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/vicreg_pid.py --workdir=runs/imagenet_vicreg_pid
  python -m ssljax.main --config=configs/imagenet/vicreg_pid.py --workdir=runs/imagenet_vicreg_pid --mode=evaluate

Method (`presets.pid_variant`, `ssljax/train/pid_ssl.py`): the baseline recipe
plus α(t)·[CE(g(h1), ŷ) + CE(g(h2), ŷ)] with k-means pseudo-labels ŷ (K = 1000
classes) on un-augmented training images; the paper's ImageNet schedule is
UNKNOWN; the baseline's 1000 epochs are kept with the CIFAR proportions
(warm-up and refresh every 10 % of the run, α ramped 1e-5 → 1e-1). Unknown:
the ramp shape, the head g, the clustering features and the paper's baseline
recipes.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.pid_variant("configs/imagenet/vicreg.py", arg)
