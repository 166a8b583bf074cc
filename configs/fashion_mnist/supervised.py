r"""Supervised reference on Fashion-MNIST: the same encoder trained with cross-entropy on labels.

Run::

  python -m ssljax.main --config=configs/fashion_mnist/supervised.py --workdir=runs/fmnist_supervised

Not an SSL method: the reference row of `experiments/fashion_mnist_table.py`,
with a supervised recipe rather than the SSL one: light augmentation (random
crop with 2-pixel zero padding + horizontal flip, the ``'supervised'`` view
preset), SGD (momentum 0.9), lr 0.1
(not scaled by the batch), weight decay 5e-4 on the weights, a short linear
warm-up (0.2 epoch) then cosine, the usual small-image classification recipe
(e.g. the torchvision/pytorch-cifar ResNet scripts: SGD 0.1, momentum 0.9, wd
5e-4, ``RandomCrop(padding)`` + flip). Each of the two augmented views is
classified by a linear head on the backbone embedding with cross-entropy on the
true label (the ``supervised`` term); the projector exists but receives no
gradient. Evaluation is the same frozen-feature linear probe and kNN as for
the SSL methods.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=10.0, datasets=("fashion_mnist",))
  c = config_lib.base_config()
  c.method = "supervised"
  presets.fashion_mnist(c, epochs=a.epochs)
  c.data.augmentation = "supervised"
  c.optim.name = "sgd"
  c.optim.base_lr = 0.1
  c.optim.lr_scaling = "none"
  c.optim.weight_decay = 5e-4
  c.optim.momentum = 0.9
  c.optim.warmup_epochs = 0.2
  c.loss.terms = {"supervised": {"weight": 1.0}}
  return presets.finish(c, a)
