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

from ssljax import config as config_lib
from ssljax import configs_util
from ssljax import presets


def get_config(arg=None):
  c = configs_util.load_config("configs/fashion_mnist/byol.py", arg or "")
  with c.unlocked():
    epochs = c.num_epochs if c.total_steps <= 0 else 1.0
    presets.add_pid(c, warmup_epochs=0.1 * epochs, refresh_every_epochs=0.1 * epochs)
  return config_lib.finalize(c)
