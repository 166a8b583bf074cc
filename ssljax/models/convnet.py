"""A small CPU-friendly ConvNet encoder for 28×28 / 32×32 images.

Each stage is a 3×3 conv + BatchNorm + ReLU; downsampling is done by the
conv stride (default 2 in every stage), never by max-pooling: on XLA:CPU the
max-pool backward pass costs 10–30× its forward pass, while a strided conv
trains ~8× faster end to end (measured; see ``docs/models.md``). A global
average pool gives features ``[N, widths[-1]]``.

With the default widths (32, 64, 128) a 28×28 input goes 14×14 → 7×7 → 4×4.

Example:
  >>> import jax, jax.numpy as jnp
  >>> model = ConvNet()
  >>> variables = model.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)), train=False)
  >>> x = jnp.ones((4, 28, 28, 1))
  >>> feats, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  >>> feats.shape  # [N, widths[-1]]
  (4, 128)
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from ssljax.models.resnet import conv_kernel_init


class ConvNet(nn.Module):
  """Strided-conv feature extractor: ``x [N, H, W, C] -> features [N, widths[-1]]``.

  Attributes:
    widths: output channels of the stages.
    strides: stride of each stage's conv; ``None`` means 2 for every stage.
    dtype: computation dtype (parameters and BatchNorm statistics stay float32).
    bn_momentum: running-average decay of BatchNorm.
    bn_eps: BatchNorm epsilon.
    bn_axis_name: mapped axis for BN statistics inside ``shard_map``
      (``None`` under ``jax.jit``, where statistics are global already).
  """
  widths: Sequence[int] = (32, 64, 128)
  strides: Optional[Sequence[int]] = None
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_eps: float = 1e-5
  bn_axis_name: Optional[str] = None

  @property
  def num_features(self) -> int:
    return self.widths[-1]

  @nn.compact
  def __call__(self, x, train: bool):
    """Features of a batch of NHWC images.

    Args:
      x: images ``[N, H, W, C]``.
      train: batch statistics in BN (pass ``mutable=['batch_stats']``) or
        running averages.
    Returns:
      features ``[N, widths[-1]]``.
    """
    if x.ndim != 4:
      raise ValueError(f"ConvNet expects NHWC images [N, H, W, C], got shape {x.shape}.")
    if not self.widths:
      raise ValueError("ConvNet needs at least one stage: widths must be non-empty.")
    strides = (2,) * len(self.widths) if self.strides is None else tuple(self.strides)
    if len(strides) != len(self.widths):
      raise ValueError(f"ConvNet: strides {strides} and widths {tuple(self.widths)} must have "
                       "the same length.")
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=self.bn_momentum, epsilon=self.bn_eps,
                             dtype=self.dtype, axis_name=self.bn_axis_name)
    x = x.astype(self.dtype)
    for i, (w, s) in enumerate(zip(self.widths, strides)):
      x = nn.Conv(w, (3, 3), strides=s, padding=((1, 1), (1, 1)), use_bias=False,
                  dtype=self.dtype, kernel_init=conv_kernel_init, name=f"conv{i}")(x)
      x = nn.relu(norm(name=f"bn{i}")(x))
    return jnp.mean(x, axis=(1, 2))
