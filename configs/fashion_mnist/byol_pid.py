r"""byol + PID-SSL on Fashion-MNIST, CPU-sized (baseline: configs/fashion_mnist/byol.py).

Run::

  python -m ssljax.main --config=configs/fashion_mnist/byol_pid.py --workdir=runs/fmnist_byol_pid

PID-SSL (Mohamadi, Doretto & Adjeroh, arXiv 2412.02121): the baseline loss
plus α(t)·[CE(g(h1), ŷ) + CE(g(h2), ŷ)] with k-means pseudo-labels ŷ (K = 10
classes) on un-augmented training images. The paper's 1000-epoch schedule
(100 warm-up epochs, refresh every 100, α 1e-5 → 1e-1) is kept in proportion:
warm-up and refresh every 10 % of the run. Unknown paper details are
documented choices in `ssljax/train/pid_ssl.py`.
"""

from ssljax import presets


def get_config(arg=None):
  return presets.pid_variant("configs/fashion_mnist/byol.py", arg)
