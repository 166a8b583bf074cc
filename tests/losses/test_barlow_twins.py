"""Tests for ssljax.losses.barlow_twins.

Float32 tolerance: the default statistics are centred on the global-batch mean,
so the float32 error is the round-off of D×D sums of N products and of D²
squared terms: measured ≤ 1.3e-6 relative (N = 256, D = 32, any mean offset);
rtol = 1e-4 leaves margin. Raw moments (``center=False``) cancel as
(|μ|/σ)²·6e-8; the offset-mean test checks that the default path does not.
"""

from __future__ import annotations

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from ssljax import parallel
from ssljax.losses import barlow_twins as bt
from ssljax.testing import assert_distributed_equivalence

F32_RTOL = 1e-4

_bt = jax.jit(bt.barlow_twins_loss, static_argnames=("axis_name",))


def _loss(z1, z2, **kw):
  """Barlow Twins loss of the pair (z1, z2): views [2, N, D]."""
  return _bt(jnp.stack([jnp.asarray(z1), jnp.asarray(z2)]), **kw)


def np_barlow(z1, z2, lambd=0.0051, eps=1e-5, scale=1.0):
  """Float64 reference following the official main.py step by step (loops for the sums)."""
  z1 = np.asarray(z1, np.float64)
  z2 = np.asarray(z2, np.float64)
  n, d = z1.shape
  # BatchNorm1d(affine=False) in training mode: biased variance, eps inside the sqrt.
  b1 = (z1 - z1.mean(0)) / np.sqrt(z1.var(0) + eps)
  b2 = (z2 - z2.mean(0)) / np.sqrt(z2.var(0) + eps)
  c = b1.T @ b2 / n
  on = sum((1.0 - c[i, i]) ** 2 for i in range(d))
  off = sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
  return scale * (on + lambd * off), on, off


def _rand(shape, seed, dtype=np.float64):
  return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _pair(n, d, seed, dtype=np.float64):
  z1 = _rand((n, d), seed, dtype)
  z2 = (0.7 * z1 + 0.5 * _rand((n, d), seed + 1, dtype)).astype(dtype)   # correlated views
  return z1, z2


@pytest.mark.parametrize("n,d", [(4, 3), (10, 6), (32, 16)])
def test_matches_numpy_float64(n, d):
  z1, z2 = _pair(n, d, n)
  want, on, off = np_barlow(z1, z2)
  with jax.enable_x64(True):
    got, aux = _loss(jnp.asarray(z1), jnp.asarray(z2))
    got_l, _ = _loss(jnp.asarray(z1), jnp.asarray(z2), lambd=0.1, scale_loss=0.024)
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(float(got), want, rtol=1e-9)
  np.testing.assert_allclose(float(aux["on_diag"]), on, rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(float(aux["off_diag"]), off, rtol=1e-9)
  np.testing.assert_allclose(float(got_l), np_barlow(z1, z2, 0.1, scale=0.024)[0], rtol=1e-9)


def test_float32_tolerance():
  z1, z2 = _pair(32, 16, 5, np.float32)
  got, _ = _loss(jnp.asarray(z1), jnp.asarray(z2))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), np_barlow(z1, z2)[0], rtol=F32_RTOL)


def test_float32_with_offset_mean():
  # |μ|/σ = 30: raw moments lose ~1e-3 relative here (measured); centred ones do not.
  z1, z2 = _pair(64, 8, 6, np.float32)
  z1, z2 = z1 + 30.0, z2 - 30.0
  got, _ = _loss(jnp.asarray(z1), jnp.asarray(z2))
  np.testing.assert_allclose(float(got), np_barlow(z1, z2)[0], rtol=F32_RTOL)


def test_analytic_orthogonal_columns():
  # Columns centred, orthogonal, variance 1: C = I·1/(1 + eps), so
  # on_diag = D·(eps/(1 + eps))², off_diag = 0.
  z = jnp.array([[1., 1., 1.], [1., -1., -1.], [-1., 1., -1.], [-1., -1., 1.]])
  eps = 1e-5
  with jax.enable_x64(True):
    z = z.astype(jnp.float64)
    got, aux = _loss(z, z)
    neg, aux_neg = _loss(z, -z)              # C = −I/(1+eps): on_diag ≈ 4·D
  np.testing.assert_allclose(float(got), 3 * (eps / (1 + eps)) ** 2, rtol=1e-9)
  np.testing.assert_allclose(float(aux["off_diag"]), 0.0, atol=1e-20)
  np.testing.assert_allclose(float(aux_neg["on_diag"]), 3 * (1 + 1 / (1 + eps)) ** 2, rtol=1e-12)
  np.testing.assert_allclose(float(aux["mean_diag_corr"]), 1 / (1 + eps), rtol=1e-12)


def test_symmetry_permutation_and_affine_invariance():
  z1, z2 = _pair(12, 5, 7)
  perm = np.random.default_rng(2).permutation(12)
  scale, shift = np.linspace(0.5, 3.0, 5), np.linspace(-2, 2, 5)
  with jax.enable_x64(True):
    base, _ = _loss(jnp.asarray(z1), jnp.asarray(z2), eps=0.0)
    swapped, _ = _loss(jnp.asarray(z2), jnp.asarray(z1), eps=0.0)         # C → Cᵀ
    permuted, _ = _loss(jnp.asarray(z1[perm]), jnp.asarray(z2[perm]), eps=0.0)
    # Standardisation removes per-dimension positive scale and shift (exactly with eps = 0).
    affine, _ = _loss(jnp.asarray(z1 * scale + shift), jnp.asarray(z2), eps=0.0)
  for v in (swapped, permuted, affine):
    np.testing.assert_allclose(float(v), float(base), rtol=1e-10)


def test_stats_path_equals_direct_and_is_additive():
  z1, z2 = _pair(16, 6, 8)
  stats_fn = jax.jit(bt.barlow_twins_stats, static_argnames=("center", "axis_name"))
  from_stats = jax.jit(bt.barlow_twins_from_stats)
  with jax.enable_x64(True):
    a1, a2 = jnp.asarray(z1) + 3.0, jnp.asarray(z2)
    raw = stats_fn((a1, a2), center=False)
    centred = stats_fn((a1, a2))
    # Raw statistics of two halves add up to those of the whole batch.
    halves = [stats_fn((a1[s], a2[s]), center=False) for s in (slice(0, 7), slice(7, 16))]
    summed = jax.tree.map(lambda x, y: x + y, *halves)
    loss_summed, _ = from_stats(summed)
    loss_raw, _ = from_stats(raw)
    loss_centred, _ = from_stats(centred)
    direct, _ = _loss(a1, a2)
  for x, y in zip(raw, summed):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12)
  np.testing.assert_allclose(np.asarray(raw.cross), (z1 + 3.0).T @ z2, rtol=1e-12)
  np.testing.assert_allclose(np.asarray(centred.sum1), 0.0, atol=1e-12)
  np.testing.assert_allclose(float(raw.count), 16)
  want = np_barlow(z1 + 3.0, z2)[0]
  for v in (loss_summed, loss_raw, loss_centred, direct):
    np.testing.assert_allclose(float(v), want, rtol=1e-9)
  np.testing.assert_allclose(float(direct), float(loss_centred), rtol=1e-14)


def test_sharded_stats_equal_global_stats():
  z1, z2 = _pair(16, 4, 9, np.float32)
  mesh = parallel.make_data_mesh()
  f = jax.jit(jax.shard_map(
      lambda v: tuple(bt.barlow_twins_stats(v, axis_name=parallel.DATA_AXIS)),
      mesh=mesh, in_specs=(P(None, parallel.DATA_AXIS),), out_specs=P()))
  views = jnp.stack([jnp.asarray(z1), jnp.asarray(z2)])
  got = f(views)
  want = jax.jit(lambda v: tuple(bt.barlow_twins_stats(v)))(views)
  for x, y in zip(got, want):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-5)


def test_gradients_and_hyperparameters():
  z1, z2 = _pair(5, 3, 10)
  with jax.enable_x64(True):
    a, b = jnp.asarray(z1), jnp.asarray(z2)
    f = jax.jit(lambda x, y: bt.barlow_twins_loss((x, y), lambd=0.3)[0])
    g = jax.grad(f, argnums=(0, 1))(a, b)
    assert all(np.all(np.isfinite(x)) for x in g)
    check_grads(f, (a, b), order=1, modes=("rev",))
    # dL/dλ = scale · off_diag (the loss is linear in λ).
    fl = jax.jit(lambda lam: bt.barlow_twins_loss((a, b), lambd=lam, scale_loss=0.5))
    (_, aux), dl = fl(0.01), jax.grad(lambda lam: fl(lam)[0])(0.01)
  np.testing.assert_allclose(float(dl), 0.5 * float(aux["off_diag"]), rtol=1e-12)


def test_jit_and_vmap_over_lambda():
  z1, z2 = _pair(8, 4, 11, np.float32)
  lams = jnp.array([0.0, 0.0051, 0.1], jnp.float32)
  f = jax.jit(jax.vmap(lambda lam: bt.barlow_twins_loss((z1, z2), lambd=lam)[0]))
  for lam, got in zip(np.asarray(lams), np.asarray(f(lams))):
    np.testing.assert_allclose(got, np_barlow(z1, z2, float(lam))[0], rtol=F32_RTOL)


def test_distributed_equivalence():
  views = np.stack(_pair(16, 4, 12, np.float32))
  fn = lambda v, axis_name=None: bt.barlow_twins_loss(v, axis_name=axis_name)[0]
  assert_distributed_equivalence(fn, (views,), batch_axes=(1,), argnums=0)


def test_sequence_input_equals_stacked_input_and_aux_scalars():
  z1, z2 = _pair(8, 4, 13, np.float32)
  stacked, aux = bt.barlow_twins_loss(np.stack([z1, z2]))
  for seq in ([z1, z2], (z1, z2)):
    got, got_aux = bt.barlow_twins_loss(seq)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(stacked))
    for k in aux:
      np.testing.assert_array_equal(np.asarray(got_aux[k]), np.asarray(aux[k]))
    np.testing.assert_array_equal(np.asarray(bt.barlow_twins_stats(seq).cross),
                                  np.asarray(bt.barlow_twins_stats(np.stack([z1, z2])).cross))
  assert all(jnp.shape(v) == () for v in aux.values())


@pytest.mark.parametrize("fn", [bt.barlow_twins_loss, bt.barlow_twins_stats])
@pytest.mark.parametrize("views", [
    np.ones((64, 2, 16), np.float32),          # examples-first [N, V, D]
    np.ones((3, 8, 4), np.float32),            # V = 3
    np.ones((8, 4), np.float32),               # rank 2
    np.ones(4, np.float32),                    # rank 1
    (np.ones((4, 3), np.float32), np.ones((4, 5), np.float32)),   # mismatched views
], ids=["examples_first", "three_views", "rank2", "rank1", "mismatched"])
def test_bad_layouts_raise(fn, views):
  with pytest.raises(ValueError, match="views must be"):
    fn(views)


def test_value_errors():
  with pytest.raises(ValueError, match="floating"):
    bt.barlow_twins_loss(jnp.ones((2, 4, 3), jnp.int32))
  bad = bt.BarlowTwinsStats(jnp.float32(4), jnp.ones(3), jnp.ones(3), jnp.ones(3), jnp.ones(3),
                            jnp.ones((3, 2)))
  with pytest.raises(ValueError, match="square"):
    bt.barlow_twins_from_stats(bad)
