"""ResNet v1 encoders (ResNet-18/34/50) with ImageNet and CIFAR stems.

The layout follows torchvision's ``resnet{18,34,50}`` with ``fc = Identity``,
which is the backbone of solo-learn, lightly and the CorInfoMax code
(``cifars-tiny/model_base_resnet.py``: torchvision ResNet with
``zero_init_residual=True``), and has the same shapes as the Haiku ResNet v1
(``haiku/_src/nets/resnet.py``) of DeepMind's BYOL / SSL-HSIC:

* the stride of a bottleneck block sits on its 3×3 conv (torchvision's
  "v1.5"; Haiku's ``BlockV1`` does the same);
* downsampling shortcuts are a 1×1 strided conv + BatchNorm;
* convolutions have no bias; conv weights use He-normal fan-out init
  (torchvision's ``kaiming_normal_(mode='fan_out')``);
* ``zero_init_residual=True`` sets the scale of each block's last BN to 0, so
  each residual block starts as the identity (Goyal et al. 2017; CorInfoMax
  uses it).

Parameter counts equal torchvision's without the fc layer (ResNet-18:
11,176,512; ResNet-34: 21,284,672; ResNet-50: 23,508,032). Running means and
variances live in the ``batch_stats`` collection, not in ``params``.

BatchNorm uses batch statistics when ``train=True``. Inside ``jax.jit`` with
batch-sharded inputs the mean over the batch axis is a global mean, so BN is
synchronised across devices (sync-BN) without anything else to do. Inside
``jax.shard_map`` pass ``bn_axis_name='data'`` to get the same global
statistics from per-device shards.

Differences from Haiku's ResNet v1 (BYOL / SSL-HSIC): Haiku zero-initialises
the last BN scale of every bottleneck block (here: ``zero_init_residual=True``),
draws conv weights from a fan-in truncated normal, and pads with TF-style
``'SAME'`` (asymmetric for strided convs on even inputs); we follow
torchvision's symmetric ``k // 2`` padding and fan-out He init by default.

Differences from torchvision that do not change shapes or counts: Flax's BN
updates the running variance with the biased batch variance (torch uses the
unbiased one), and ``bn_momentum=0.9`` is the decay of the running average
(torch ``momentum=0.1`` / Haiku ``decay_rate=0.9``).

Example (a ¼-width ResNet-18 keeps the doctest fast):
  >>> import jax, jax.numpy as jnp
  >>> model = ResNet18(stem='cifar', width=16)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), train=False)
  >>> x = jnp.ones((2, 32, 32, 3))
  >>> feats, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  >>> feats.shape  # [N, 8 * width]
  (2, 128)
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

# torchvision: nn.init.kaiming_normal_(w, mode='fan_out', nonlinearity='relu').
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

ModuleDef = Any


def _pad(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
  # Symmetric padding k // 2, as torch does. Flax's 'SAME' pads strided convs
  # asymmetrically on even inputs, which shifts the sampling grid.
  p = kernel // 2
  return ((p, p), (p, p))


class BasicBlock(nn.Module):
  """Two 3×3 convs (ResNet-18/34). Output channels = ``filters``.

  Attributes:
    filters: channels of both convs.
    strides: stride of the first conv (and of the projection shortcut).
    conv: conv constructor (bias-free, initialised).
    norm: BatchNorm constructor (train/eval and axis name already bound).
    zero_init_residual: initialise the last BN scale to 0.
  """
  filters: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  zero_init_residual: bool = False
  expansion = 1

  @nn.compact
  def __call__(self, x):
    residual = x
    y = self.conv(self.filters, (3, 3), self.strides, padding=_pad(3), name="conv1")(x)
    y = nn.relu(self.norm(name="bn1")(y))
    y = self.conv(self.filters, (3, 3), 1, padding=_pad(3), name="conv2")(y)
    y = self.norm(name="bn2", **_last_bn_kwargs(self.zero_init_residual))(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters, (1, 1), self.strides, padding=((0, 0), (0, 0)),
                           name="downsample_conv")(residual)
      residual = self.norm(name="downsample_bn")(residual)
    return nn.relu(residual + y)


class Bottleneck(nn.Module):
  """1×1 → 3×3 (strided) → 1×1 convs (ResNet-50). Output = ``4 * filters``.

  Attributes:
    filters: channels of the 1×1 and 3×3 convs; the block outputs 4× this.
    strides: stride of the 3×3 conv and of the projection shortcut.
    conv: conv constructor.
    norm: BatchNorm constructor.
    zero_init_residual: initialise the last BN scale to 0.
  """
  filters: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  zero_init_residual: bool = False
  expansion = 4

  @nn.compact
  def __call__(self, x):
    residual = x
    out = self.filters * self.expansion
    y = self.conv(self.filters, (1, 1), 1, padding=((0, 0), (0, 0)), name="conv1")(x)
    y = nn.relu(self.norm(name="bn1")(y))
    y = self.conv(self.filters, (3, 3), self.strides, padding=_pad(3), name="conv2")(y)
    y = nn.relu(self.norm(name="bn2")(y))
    y = self.conv(out, (1, 1), 1, padding=((0, 0), (0, 0)), name="conv3")(y)
    y = self.norm(name="bn3", **_last_bn_kwargs(self.zero_init_residual))(y)
    if residual.shape != y.shape:
      residual = self.conv(out, (1, 1), self.strides, padding=((0, 0), (0, 0)),
                           name="downsample_conv")(residual)
      residual = self.norm(name="downsample_bn")(residual)
    return nn.relu(residual + y)


def _last_bn_kwargs(zero_init: bool) -> dict:
  return {"scale_init": nn.initializers.zeros} if zero_init else {}


class ResNet(nn.Module):
  """ResNet v1 feature extractor: ``x [N, H, W, C] -> features [N, F]``.

  ``F = 8 * width * block_cls.expansion`` (512 for ResNet-18/34, 2048 for
  ResNet-50 at ``width=64``).

  Attributes:
    stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
    block_cls: ``BasicBlock`` or ``Bottleneck``.
    width: channels of the stem and of the first stage (64 in torchvision);
      stage ``i`` has ``width * 2**i`` channels (times the block expansion).
    stem: ``'imagenet'``: 7×7/2 conv + BN + ReLU + 3×3/2 max-pool;
      ``'cifar'``: 3×3/1 conv + BN + ReLU, no max-pool (for 32×32 / 64×64
      inputs, as in solo-learn and CorInfoMax).
    stem_padding: padding of the stem conv; default ``None`` gives the usual
      ``k // 2`` (3 for ImageNet, 1 for CIFAR, as CorInfoMax). solo-learn's
      CIFAR stem uses 2 (34×34 feature maps); pass 2 to reproduce it.
    zero_init_residual: zero-init the last BN scale of every block.
    dtype: computation dtype (parameters stay float32).
    bn_momentum: running-average decay of BatchNorm (0.9 = torch 0.1).
    bn_eps: BatchNorm epsilon.
    bn_axis_name: mapped axis over which BN statistics are averaged when the
      model runs per-device inside ``shard_map`` (e.g. ``'data'``). Leave
      ``None`` under ``jax.jit``: global-batch statistics are automatic there.
  """
  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  width: int = 64
  stem: str = "imagenet"
  stem_padding: Optional[int] = None
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_eps: float = 1e-5
  bn_axis_name: Optional[str] = None

  @property
  def num_features(self) -> int:
    return self.width * 2 ** (len(self.stage_sizes) - 1) * self.block_cls.expansion

  @nn.compact
  def __call__(self, x, train: bool):
    """Features of a batch of NHWC images.

    Args:
      x: images ``[N, H, W, C]``.
      train: use batch statistics in BN (and update ``batch_stats``, which must
        then be passed as ``mutable=['batch_stats']``); else running averages.
    Returns:
      features ``[N, F]`` after global average pooling.
    """
    if self.stem not in ("imagenet", "cifar"):
      raise ValueError(f"ResNet stem must be 'imagenet' or 'cifar', got {self.stem!r}.")
    if x.ndim != 4:
      raise ValueError(f"ResNet expects NHWC images [N, H, W, C], got shape {x.shape}.")
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype,
                             kernel_init=conv_kernel_init)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=self.bn_momentum, epsilon=self.bn_eps,
                             dtype=self.dtype, axis_name=self.bn_axis_name)
    x = x.astype(self.dtype)
    if self.stem == "imagenet":
      p = 3 if self.stem_padding is None else self.stem_padding
      x = conv(self.width, (7, 7), 2, padding=((p, p), (p, p)), name="conv1")(x)
      x = nn.relu(norm(name="bn1")(x))
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    else:
      p = 1 if self.stem_padding is None else self.stem_padding
      x = conv(self.width, (3, 3), 1, padding=((p, p), (p, p)), name="conv1")(x)
      x = nn.relu(norm(name="bn1")(x))
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = self.block_cls(filters=self.width * 2 ** i, strides=strides, conv=conv, norm=norm,
                           zero_init_residual=self.zero_init_residual,
                           name=f"layer{i + 1}_block{j}")(x)
    return jnp.mean(x, axis=(1, 2))


ResNet18: Callable[..., ResNet] = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2),
                                                    block_cls=BasicBlock)
ResNet34: Callable[..., ResNet] = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                                                    block_cls=BasicBlock)
ResNet50: Callable[..., ResNet] = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                                                    block_cls=Bottleneck)
