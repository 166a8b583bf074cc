"""Encoders and heads (Flax linen), all called as ``apply(variables, x, train=...)``.

Every module maps ``x -> features`` and keeps BatchNorm running averages in the
``batch_stats`` collection: in training, apply with ``mutable=['batch_stats']``.

Provenance and defaults of each model: ``docs/models.md``.

Example:
  >>> encoder = build_encoder('resnet18', stem='cifar')
  >>> encoder.num_features
  512
  >>> head = MLPHead((4096,), 256, last_bias=False)
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

from ssljax.models.convnet import ConvNet
from ssljax.models.heads import MLPHead
from ssljax.models.resnet import BasicBlock, Bottleneck, ResNet, ResNet18, ResNet34, ResNet50
from ssljax.models.vit import ViT, ViTBase, ViTSmall, ViTTiny

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
    "convnet": ConvNet,
    "vit_tiny": ViTTiny,
    "vit_small": ViTSmall,
    "vit_base": ViTBase,
}


def build_encoder(name: str, **kwargs) -> nn.Module:
  """Encoder module by name.

  Args:
    name: one of ``'resnet18'``, ``'resnet34'``, ``'resnet50'``, ``'convnet'``,
      ``'vit_tiny'``, ``'vit_small'``, ``'vit_base'`` (case-insensitive).
    **kwargs: module attributes, e.g. ``stem='cifar'``, ``width=16``,
      ``zero_init_residual=True`` (ResNets), ``widths=(32, 64)`` (ConvNet),
      ``patch_size=4``, ``pool='gap'`` (ViTs) or ``dtype=jnp.bfloat16`` (all).
  Returns:
    An unbound Flax module with ``__call__(x [N, H, W, C], train) -> [N, F]``.
  """
  key = name.lower()
  if key not in ENCODERS:
    raise ValueError(f"Unknown encoder {name!r}; valid names are {sorted(ENCODERS)}.")
  return ENCODERS[key](**kwargs)


__all__ = [
    "BasicBlock", "Bottleneck", "ConvNet", "ENCODERS", "MLPHead", "ResNet", "ResNet18",
    "ResNet34", "ResNet50", "ViT", "ViTBase", "ViTSmall", "ViTTiny", "build_encoder",
]
