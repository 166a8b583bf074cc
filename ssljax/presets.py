"""Dataset presets shared by the files in ``configs/`` (the method parts stay in each file)."""

from __future__ import annotations

import ml_collections


def fashion_mnist(c: ml_collections.ConfigDict, *, runlocal: bool = False,
                  epochs: float = 10.0) -> ml_collections.ConfigDict:
  """The embedded CPU default: Fashion-MNIST (offline, Debian package), small ConvNet.

  Sized so the whole run (pretraining + evaluation) takes a few minutes on a
  2-core CPU. ``runlocal`` shrinks it to a smoke run of a few seconds.
  """
  c.data.name = "fashion_mnist"
  c.data.image_size = 28
  c.data.augmentation = "fashion_mnist"
  c.data.batch_size = 256
  c.model.encoder = "convnet"
  c.model.encoder_kwargs = ml_collections.ConfigDict({"widths": (32, 64, 128)})
  c.model.projector_hidden = (1024,)
  c.model.projector_dim = 256
  c.num_epochs = epochs
  c.optim.name = "lars"
  c.optim.base_lr = 0.3
  c.optim.weight_decay = 1e-6
  c.optim.warmup_epochs = 1.0
  c.log_every_steps = 50
  c.checkpoint.every_steps = 500
  c.eval.batch_size = 1000
  c.eval.knn_k = 20
  c.eval.linear_epochs = 20
  c.eval.linear_lr = 0.1
  if runlocal:
    c.total_steps = 6
    c.data.batch_size = 64
    c.model.projector_hidden = (64,)
    c.model.projector_dim = 32
    c.model.encoder_kwargs = ml_collections.ConfigDict({"widths": (8, 16)})
    c.log_every_steps = 2
    c.checkpoint.every_steps = 3
    c.eval.knn_train_examples = 2000
    c.eval.linear_train_examples = 2000
    c.eval.linear_epochs = 2
  return c
