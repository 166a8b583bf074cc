"""ViT encoders: shapes, timm parameter counts (by formula), CLS vs GAP, dtype, jit/grad."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import models
from ssljax.models import ViT


def _timm_count(embed_dim, depth, patch, image=224, channels=3, mlp_ratio=4):
  """timm ``VisionTransformer(num_classes=0)`` parameters, term by term."""
  d, h = embed_dim, embed_dim * mlp_ratio
  patch_embed = patch * patch * channels * d + d
  tokens = d + (1 + (image // patch) ** 2) * d          # cls token + position embedding
  block = (2 * 2 * d                                     # norm1, norm2
           + 3 * (d * d + d) + (d * d + d)               # qkv, proj
           + (d * h + h) + (h * d + d))                  # fc1, fc2
  return patch_embed + tokens + depth * block + 2 * d    # + final norm


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name,dim,expected", [
    ("vit_small", 384, 21_665_664), ("vit_base", 768, 85_798_656)])
def test_parameter_counts_equal_timm(name, dim, expected):
  assert _timm_count(dim, 12, 16) == expected           # the formula reproduces timm's numbers
  model = models.build_encoder(name)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                              train=False))
  assert list(shapes) == ["params"]                     # no BatchNorm statistics
  assert _count(shapes) == expected
  assert model.num_features == dim
  gap = models.build_encoder(name, pool="gap")
  shapes = jax.eval_shape(lambda: gap.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                            train=False))
  assert _count(shapes) == expected                     # fc_norm replaces norm: same count


def test_small_inputs_patch_4_and_8():
  model = models.build_encoder("vit_tiny", patch_size=4)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                              train=False))
  assert shapes["params"]["pos_embed"].shape == (1, 1 + 64, 192)
  assert _count(shapes) == _timm_count(192, 12, 4, image=32)
  with pytest.raises(ValueError, match="multiple of patch_size=16"):
    models.build_encoder("vit_tiny").init(jax.random.key(0), jnp.zeros((1, 40, 40, 3)),
                                          train=False)


def _tiny(**kw):
  return ViT(embed_dim=32, depth=2, num_heads=4, patch_size=8, **kw)


def test_cls_and_gap_pooling():
  x = jax.random.normal(jax.random.key(1), (3, 32, 32, 3))
  cls, gap = _tiny(pool="cls"), _tiny(pool="gap")
  v = cls.init(jax.random.key(0), x, train=False)
  a = cls.apply(v, x, train=True)
  b = gap.apply(v, x, train=True)                       # same parameters, other pooling
  assert a.shape == b.shape == (3, 32)
  assert not np.allclose(a, b)
  # GAP features are LayerNorm outputs of the mean patch token: zero mean, unit variance
  # before the (identity at init) affine.
  np.testing.assert_allclose(np.mean(np.asarray(b), -1), 0.0, atol=1e-5)
  with pytest.raises(ValueError, match="pool"):
    _tiny(pool="max").init(jax.random.key(0), x, train=False)


def test_bfloat16_compute_float32_params():
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  m16, m32 = _tiny(dtype=jnp.bfloat16), _tiny()
  v = m16.init(jax.random.key(0), x, train=False)
  assert {p.dtype for p in jax.tree.leaves(v)} == {jnp.dtype(jnp.float32)}
  y16, y32 = m16.apply(v, x, train=False), m32.apply(v, x, train=False)
  assert y16.dtype == jnp.bfloat16 and y32.dtype == jnp.float32
  # Two blocks in bf16 (8 significant bits): relative error of a few 2^-8.
  err = np.linalg.norm(np.asarray(y16, np.float32) - y32) / np.linalg.norm(y32)
  assert err < 3e-2, err


def test_jit_and_grad():
  model = _tiny()
  x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
  v = model.init(jax.random.key(0), x, train=False)
  loss = jax.jit(lambda p: jnp.sum(model.apply(p, x, train=True) ** 2))
  g = jax.grad(loss)(v)
  assert jax.tree.structure(g) == jax.tree.structure(v)
  assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(g))
  assert np.abs(np.asarray(g["params"]["pos_embed"])).sum() > 0
