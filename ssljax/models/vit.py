"""Vision Transformer encoders (ViT-Tiny/Small/Base), timm layout, no classifier.

The layout is timm's ``VisionTransformer`` (``timm/models/vision_transformer.py``),
the backbone of solo-learn's and lightly's ViT recipes:

* patch embedding: a ``patch × patch`` conv with stride ``patch`` (bias);
* a learned CLS token and a learned position embedding ``[1 + P, D]``
  (P = number of patches, fixed by the input size at ``init``);
* ``depth`` pre-norm blocks ``x + Attn(LN(x))``, ``x + MLP(LN(x))``: LayerNorm
  ε = 1e-6, multi-head self-attention with biased q/k/v and output
  projections, MLP ``D → 4D → D`` with the exact (erf) GELU;
* a final LayerNorm, then ``pool='cls'`` (the CLS token; timm
  ``global_pool='token'``) or ``pool='gap'`` (mean of the patch tokens, the
  LayerNorm after the pooling; timm ``global_pool='avg'`` with ``fc_norm``).

Parameter counts equal timm's without the head (``num_classes=0``):
ViT-S/16 at 224 px 21,665,664, ViT-B/16 85,798,656 (``tests/models/test_vit.py``
derives both from the formula). No dropout or stochastic depth (timm's
defaults are 0).

Initialisation (timm's ``init_weights_vit_timm``): Linear weights truncated
normal σ = 0.02, zero biases; position embedding truncated normal σ = 0.02;
CLS token normal σ = 1e-6; the patch conv uses LeCun normal (timm keeps
PyTorch's conv default there; ours is the JAX ViT's choice).

Mixed precision: ``dtype`` is the compute dtype of every matmul and of the
activations; parameters stay float32 (``param_dtype``); LayerNorm statistics
and the attention softmax are computed in float32
(``force_fp32_for_softmax``).

Example (a 2-block ViT keeps the doctest fast):
  >>> import jax, jax.numpy as jnp
  >>> model = ViT(embed_dim=32, depth=2, num_heads=2, patch_size=8)
  >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
  >>> model.apply(variables, jnp.ones((4, 32, 32, 3)), train=True).shape  # [N, embed_dim]
  (4, 32)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

_dense_init = nn.initializers.truncated_normal(0.02)
_LN_EPS = 1e-6
POOLS = ("cls", "gap")


class MlpBlock(nn.Module):
  """``D → mlp_ratio·D → D`` with the exact GELU (timm ``Mlp``)."""
  mlp_dim: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype,
                              kernel_init=_dense_init)
    y = nn.gelu(dense(self.mlp_dim, name="fc1")(x), approximate=False)
    return dense(x.shape[-1], name="fc2")(y)


class EncoderBlock(nn.Module):
  """Pre-norm transformer block ``x + Attn(LN(x))``, ``x + MLP(LN(x))`` on ``[N, T, D]``."""
  num_heads: int
  mlp_dim: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    norm = functools.partial(nn.LayerNorm, epsilon=_LN_EPS, dtype=self.dtype,
                             param_dtype=self.param_dtype)
    y = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=_dense_init, deterministic=True, force_fp32_for_softmax=True,
        name="attn")(norm(name="norm1")(x))
    x = x + y
    y = MlpBlock(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                 name="mlp")(norm(name="norm2")(x))
    return x + y


class ViT(nn.Module):
  """Vision Transformer feature extractor: ``x [N, H, W, C] -> features [N, embed_dim]``.

  Attributes:
    embed_dim: token width D (Tiny 192, Small 384, Base 768).
    depth: number of blocks (12 for all three).
    num_heads: attention heads (Tiny 3, Small 6, Base 12).
    patch_size: side of the square patches; H and W must be multiples of it
      (16 at 224 px; 4 or 8 for 32×32 inputs).
    mlp_ratio: MLP hidden width / D (4).
    pool: ``'cls'`` (the CLS token) or ``'gap'`` (mean of the patch tokens).
    dtype: computation dtype.
    param_dtype: dtype of the parameters (float32).
  """
  embed_dim: int = 384
  depth: int = 12
  num_heads: int = 6
  patch_size: int = 16
  mlp_ratio: float = 4.0
  pool: str = "cls"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @property
  def num_features(self) -> int:
    return self.embed_dim

  @nn.compact
  def __call__(self, x, train: bool):
    """Features of a batch of NHWC images.

    Args:
      x: images ``[N, H, W, C]``, H and W multiples of ``patch_size``.
      train: unused (no dropout, no BatchNorm); kept for the encoder interface.
    Returns:
      features ``[N, embed_dim]``.
    """
    del train
    if x.ndim != 4:
      raise ValueError(f"ViT expects NHWC images [N, H, W, C], got shape {x.shape}.")
    if self.pool not in POOLS:
      raise ValueError(f"ViT pool must be one of {POOLS}, got {self.pool!r}.")
    p = self.patch_size
    if x.shape[1] % p or x.shape[2] % p:
      raise ValueError(f"ViT: image size {x.shape[1:3]} is not a multiple of patch_size={p}.")
    x = nn.Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
                param_dtype=self.param_dtype, name="patch_embed")(x.astype(self.dtype))
    n = x.shape[0]
    x = x.reshape(n, -1, self.embed_dim)                                    # [N, P, D]
    cls = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, self.embed_dim),
                     self.param_dtype)
    x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, self.embed_dim)).astype(self.dtype), x],
                        axis=1)                                             # [N, 1 + P, D]
    pos = self.param("pos_embed", _dense_init, (1, x.shape[1], self.embed_dim), self.param_dtype)
    x = x + pos.astype(self.dtype)
    for i in range(self.depth):
      x = EncoderBlock(self.num_heads, int(self.embed_dim * self.mlp_ratio), dtype=self.dtype,
                       param_dtype=self.param_dtype, name=f"block{i}")(x)
    norm = nn.LayerNorm(epsilon=_LN_EPS, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="norm")
    if self.pool == "cls":
      return norm(x)[:, 0]
    return norm(jnp.mean(x[:, 1:], axis=1))


ViTTiny: Callable[..., ViT] = functools.partial(ViT, embed_dim=192, depth=12, num_heads=3)
ViTSmall: Callable[..., ViT] = functools.partial(ViT, embed_dim=384, depth=12, num_heads=6)
ViTBase: Callable[..., ViT] = functools.partial(ViT, embed_dim=768, depth=12, num_heads=12)
