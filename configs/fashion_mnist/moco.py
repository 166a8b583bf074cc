r"""MoCo v2 on Fashion-MNIST, CPU-sized.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/moco.py --workdir=runs/fmnist_moco

MoCo v2: He et al., CVPR 2020 / Chen et al. 2020 (official
``facebookresearch/moco``): momentum key encoder (the EMA target network
with the official constant momentum m = 0.999, ``target_ema_schedule =
'constant'``), InfoNCE against a FIFO queue of past keys, τ = 0.2,
single direction. Queue 8192 = 32 steps of batch 256 (our choice: the
official 65536 would be 1.1 epochs of the 60k images, i.e. a quarter of this
10-epoch run spent filling it; solo-learn's CIFAR queue is 32768 for 50k
images).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "moco"
  presets.fashion_mnist(c, epochs=a.epochs)
  presets.ema_target(c, 0.999)
  c.model.target_ema_schedule = "constant"
  c.loss.terms = {"moco": {"weight": 1.0, "queue_size": 8192, "temperature": 0.2}}
  return presets.finish(c, a)
