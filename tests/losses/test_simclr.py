"""Tests for ssljax.losses.simclr (NT-Xent for V = 2 and V > 2 views, InfoNCE bound).

Float32 tolerance: logits are cosines / τ (|logit| ≤ 1/τ = 10 at τ = 0.1) fed
to a log-sum-exp over ≤ 2N = 32 terms; float32 round-off in the normalisation
and the matmul gives relative errors of a few 1e-7 per logit, so the loss
(≈ 3-10 nats) is compared with rtol = 2e-5.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from ssljax import parallel
from ssljax.losses import simclr
from ssljax.testing import assert_distributed_equivalence

F32_RTOL = 2e-5


# ---------------------------------------------------------------- references
def np_nt_xent(z1, z2, tau, reduction="sum"):
  """Float64 loop implementation of SimCLR Eq. 1 (2N anchors, 2N−2 negatives)."""
  z1 = np.asarray(z1, np.float64)
  z2 = np.asarray(z2, np.float64)
  n = z1.shape[0]
  h = np.concatenate([z1, z2])
  h = h / np.linalg.norm(h, axis=1, keepdims=True)
  losses = np.zeros(2 * n)
  for k in range(2 * n):
    pos = (k + n) % (2 * n)
    num = math.exp(float(h[k] @ h[pos]) / tau)
    den = sum(math.exp(float(h[k] @ h[j]) / tau) for j in range(2 * n) if j != k)
    losses[k] = -math.log(num / den)
  per_view = [losses[:n].mean(), losses[n:].mean()]
  return sum(per_view) if reduction == "sum" else np.mean(per_view)


def np_multiview(z, tau, reduction="sum"):
  """Float64 loop implementation of the SupCon-style M-view NT-Xent."""
  z = np.asarray(z, np.float64)
  v_count, n, _ = z.shape
  u = z / np.linalg.norm(z, axis=-1, keepdims=True)
  per_view = []
  for v in range(v_count):
    total = 0.0
    for i in range(n):
      cands = [(w, j) for w in range(v_count) for j in range(n) if (w, j) != (v, i)]
      den = sum(math.exp(float(u[v, i] @ u[w, j]) / tau) for w, j in cands)
      ll = [math.log(math.exp(float(u[v, i] @ u[w, i]) / tau) / den)
            for w in range(v_count) if w != v]
      total += -np.mean(ll)
    per_view.append(total / n)
  return sum(per_view) if reduction == "sum" else np.mean(per_view)


def np_positive_accuracy(z1, z2):
  h = np.concatenate([z1, z2]).astype(np.float64)
  h = h / np.linalg.norm(h, axis=1, keepdims=True)
  n = z1.shape[0]
  s = h @ h.T
  np.fill_diagonal(s, -np.inf)
  return np.mean(np.argmax(s, axis=1) == (np.arange(2 * n) + n) % (2 * n))


def _rand(shape, seed=0, dtype=np.float64):
  return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# One compilation per shape/dtype instead of op-by-op eager compiles (CPU time).
_ntx = jax.jit(simclr.nt_xent_loss, static_argnames=("view_reduction", "axis_name"))
_bnd = jax.jit(simclr.info_nce_bound, static_argnames=("axis_name",))


def _nt(z1, z2, **kw):
  """Two-view NT-Xent of the pair (z1, z2): views [2, N, D]."""
  return _ntx(jnp.stack([z1, z2]), **kw)


def _mv(z, **kw):
  """NT-Xent of views [V, N, D]."""
  return _ntx(z, **kw)


def _bound(z1, z2, **kw):
  return _bnd(jnp.stack([z1, z2]), **kw)


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("n,d", [(2, 3), (5, 4), (16, 8)])
def test_nt_xent_matches_numpy_float64(n, d):
  z1, z2 = _rand((n, d), n), _rand((n, d), n + 100)
  with jax.enable_x64(True):
    for tau in (0.1, 0.5):
      got, aux = _nt(jnp.asarray(z1), jnp.asarray(z2), temperature=tau)
      assert got.dtype == jnp.float64
      np.testing.assert_allclose(float(got), np_nt_xent(z1, z2, tau, "sum"), rtol=1e-10)
      np.testing.assert_allclose(float(aux["mean_anchor_loss"]), np_nt_xent(z1, z2, tau, "mean"),
                                 rtol=1e-10)
    got, _ = _nt(jnp.asarray(z1), jnp.asarray(z2), temperature=0.5, view_reduction="mean")
    np.testing.assert_allclose(float(got), np_nt_xent(z1, z2, 0.5, "mean"), rtol=1e-10)


def test_nt_xent_float32_tolerance_and_official_defaults():
  z1, z2 = _rand((16, 8), 3), _rand((16, 8), 4)
  got, _ = _nt(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  assert got.dtype == jnp.float32
  # Defaults = official code: tf2/run.py temperature 0.1; objective.py mean(loss_a + loss_b).
  np.testing.assert_allclose(float(got), np_nt_xent(z1, z2, 0.1, "sum"), rtol=F32_RTOL)
  np.testing.assert_allclose(float(got), 2 * np_nt_xent(z1, z2, 0.1, "mean"), rtol=F32_RTOL)


# N >= V: without axis_name, N < V is rejected as a likely examples-first [N, V, D] array.
@pytest.mark.parametrize("v,n,d", [(3, 4, 5), (4, 4, 2)])
def test_multiview_matches_numpy_float64(v, n, d):
  z = _rand((v, n, d), 7 + v)
  with jax.enable_x64(True):
    for reduction in ("sum", "mean"):
      got, _ = _mv(jnp.asarray(z), temperature=0.3, view_reduction=reduction)
      np.testing.assert_allclose(float(got), np_multiview(z, 0.3, reduction), rtol=1e-10)


def test_multiview_two_views_equals_nt_xent_reference():
  z1, z2 = _rand((7, 4), 8), _rand((7, 4), 9)
  with jax.enable_x64(True):
    mv, mv_aux = _mv(jnp.stack([jnp.asarray(z1), jnp.asarray(z2)]), temperature=0.2)
    pair, pair_aux = _nt(jnp.asarray(z1), jnp.asarray(z2), temperature=0.2)
  np.testing.assert_allclose(float(mv), np_nt_xent(z1, z2, 0.2), rtol=1e-10)
  np.testing.assert_allclose(float(mv), float(pair), rtol=1e-12)
  np.testing.assert_allclose(float(mv), np_multiview(np.stack([z1, z2]), 0.2), rtol=1e-10)
  for k in mv_aux:
    np.testing.assert_allclose(float(mv_aux[k]), float(pair_aux[k]), rtol=1e-12)


def test_matches_optax_ntxent_with_mean_reduction():
  # optax.losses.ntxent averages over all 2N positive pairs = view_reduction='mean'.
  z1, z2 = _rand((8, 6), 10, np.float32), _rand((8, 6), 11, np.float32)
  labels = jnp.concatenate([jnp.arange(8), jnp.arange(8)])
  want = jax.jit(optax.losses.ntxent)(jnp.concatenate([z1, z2]), labels, 0.5)
  got, _ = _nt(jnp.asarray(z1), jnp.asarray(z2), temperature=0.5, view_reduction="mean")
  np.testing.assert_allclose(float(got), float(want), rtol=F32_RTOL)


# ---------------------------------------------------------------- properties
def test_symmetry_scale_and_permutation_invariance():
  perm = np.random.default_rng(0).permutation(6)
  with jax.enable_x64(True):
    z = jnp.asarray(_rand((3, 6, 4), 14))
    base, _ = _mv(z)
    variants = [
        _mv(z[:, perm])[0],                        # batch permutation
        _mv(z[jnp.array([2, 0, 1])])[0],           # view permutation
        _mv(z * jnp.array([3.0, 0.5, 2.0])[:, None, None])[0],   # cosine: scale-free
    ]
    pair = _nt(z[0], z[1])[0]
    swapped = _nt(z[1], z[0])[0]                   # view swap
  for v in variants:
    np.testing.assert_allclose(float(v), float(base), rtol=1e-12)
  np.testing.assert_allclose(float(swapped), float(pair), rtol=1e-12)


def test_aux_accuracy_and_cosine():
  z1, z2 = _rand((10, 3), 15), _rand((10, 3), 16)
  with jax.enable_x64(True):
    _, aux = _nt(jnp.asarray(z1), jnp.asarray(z2))
    _, aux_close = _nt(jnp.asarray(z1), jnp.asarray(z1 + 1e-3 * z2))
  np.testing.assert_allclose(float(aux["positive_accuracy"]), np_positive_accuracy(z1, z2))
  u1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
  u2 = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
  np.testing.assert_allclose(float(aux["positive_cosine"]), np.mean(np.sum(u1 * u2, 1)),
                             rtol=1e-10)
  # Near-identical views: every positive is the nearest candidate.
  assert float(aux_close["positive_accuracy"]) == 1.0


def test_info_nce_bound_and_analytic_case():
  z1, z2 = _rand((8, 16), 17), _rand((8, 16), 18)
  with jax.enable_x64(True):
    bound, _ = _bound(jnp.asarray(z1), jnp.asarray(z2), temperature=0.5)
    # u1_i = u2_i = e_i (orthonormal): positive logit 1/τ, 2N−2 negatives at 0, so
    # ℓ = −log(e^{1/τ} / (e^{1/τ} + 2N − 2)) for every anchor.
    eye = jnp.eye(8, 16)
    tight, aux = _bound(eye, eye, temperature=0.5)
    sharp, _ = _bound(eye, eye, temperature=0.01)
  np.testing.assert_allclose(float(bound), math.log(15) - np_nt_xent(z1, z2, 0.5, "mean"),
                             rtol=1e-10)
  assert float(bound) < math.log(15)
  ell = -math.log(math.exp(2.0) / (math.exp(2.0) + 14))
  np.testing.assert_allclose(float(aux["mean_anchor_loss"]), ell, rtol=1e-12)
  np.testing.assert_allclose(float(tight), math.log(15) - ell, rtol=1e-12)
  # With τ → 0 the bound saturates at log(2N − 1).
  np.testing.assert_allclose(float(sharp), math.log(15), atol=1e-6)


def test_gradients_finite_and_check_grads():
  z1, z2 = _rand((3, 2), 19), _rand((3, 2), 20)
  with jax.enable_x64(True):
    a, b = jnp.asarray(z1), jnp.asarray(z2)
    f = jax.jit(lambda x, y: simclr.nt_xent_loss((x, y), temperature=0.5)[0])
    g = jax.grad(f, argnums=(0, 1))(a, b)
    assert all(np.all(np.isfinite(x)) for x in g)
    check_grads(f, (a, b), order=1, modes=("rev",))
    fm = jax.jit(lambda z: simclr.nt_xent_loss(z, temperature=0.5)[0])
    check_grads(fm, (jnp.asarray(_rand((3, 3, 2), 21)),), order=1, modes=("rev",))
    # Gradient with respect to the temperature.
    ft = jax.jit(lambda t: simclr.nt_xent_loss((a, b), temperature=t)[0])
    check_grads(ft, (jnp.float64(0.3),), order=1, modes=("rev",))


def test_jit_and_vmap_over_temperature():
  z1, z2 = _rand((6, 4), 22, np.float32), _rand((6, 4), 23, np.float32)
  taus = jnp.array([0.1, 0.2, 0.5], jnp.float32)
  f = jax.jit(jax.vmap(lambda t: simclr.nt_xent_loss((z1, z2), temperature=t)[0]))
  for t, got in zip(np.asarray(taus), np.asarray(f(taus))):
    np.testing.assert_allclose(got, np_nt_xent(z1, z2, float(t)), rtol=F32_RTOL)


# ---------------------------------------------------------------- distributed
def test_distributed_equivalence_nt_xent():
  # view_reduction='mean' is covered through info_nce_bound below.
  z = _rand((2, 16, 4), 24, np.float32)
  fn = lambda a, axis_name=None: simclr.nt_xent_loss(a, temperature=0.2, axis_name=axis_name)[0]
  assert_distributed_equivalence(fn, (z,), batch_axes=(1,), argnums=0)


def test_distributed_equivalence_multiview_and_bound():
  z = _rand((3, 8, 4), 26, np.float32)
  fn = lambda a, axis_name=None: simclr.nt_xent_loss(a, temperature=0.3, axis_name=axis_name)[0]
  assert_distributed_equivalence(fn, (z,), batch_axes=(1,), argnums=0)
  zb = _rand((2, 8, 4), 27, np.float32)
  fb = lambda a, axis_name=None: simclr.info_nce_bound(a, axis_name=axis_name)[0]
  assert_distributed_equivalence(fb, (zb,), batch_axes=(1,), argnums=0)


def test_distributed_aux_matches_single_device():
  z = _rand((2, 16, 3), 29, np.float32)
  mesh = parallel.make_data_mesh()
  sharded = jax.jit(jax.shard_map(
      lambda a: simclr.nt_xent_loss(a, axis_name=parallel.DATA_AXIS)[1], mesh=mesh,
      in_specs=(P(None, parallel.DATA_AXIS),), out_specs=P()))
  got = sharded(jnp.asarray(z))
  _, want = _mv(jnp.asarray(z))
  for k in want:
    np.testing.assert_allclose(float(got[k]), float(want[k]), rtol=1e-5, err_msg=k)


# ---------------------------------------------------------------- layout
def test_sequence_input_equals_stacked_input_and_aux_scalars():
  z = _rand((3, 6, 4), 31, np.float32)
  stacked, aux = _mv(jnp.asarray(z))
  for seq in (list(z), tuple(z)):
    got, got_aux = simclr.nt_xent_loss(seq)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(stacked))
    for k in aux:
      np.testing.assert_array_equal(np.asarray(got_aux[k]), np.asarray(aux[k]))
  bound, bound_aux = simclr.info_nce_bound((z[0], z[1]))
  np.testing.assert_array_equal(np.asarray(bound), np.asarray(_bnd(jnp.asarray(z[:2]))[0]))
  for a in (aux, bound_aux):
    assert all(jnp.shape(v) == () for v in a.values()), a


@pytest.mark.parametrize("fn", [simclr.nt_xent_loss, simclr.info_nce_bound])
@pytest.mark.parametrize("views", [
    np.ones((64, 2, 16), np.float32),          # examples-first [N, V, D]
    np.ones((1, 8, 4), np.float32),            # V = 1
    np.ones((8, 4), np.float32),               # rank 2
    np.ones((2, 8, 4, 1), np.float32),         # rank 4
    (np.ones((8, 4), np.float32), np.ones((8, 5), np.float32)),   # mismatched views
], ids=["examples_first", "one_view", "rank2", "rank4", "mismatched"])
def test_bad_layouts_raise(fn, views):
  with pytest.raises(ValueError, match="views must be"):
    fn(views)


def test_info_nce_bound_needs_two_views():
  with pytest.raises(ValueError, match="V=2"):
    simclr.info_nce_bound(np.ones((3, 8, 4), np.float32))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,match", [
    ({"temperature": 0.0}, "temperature"),
    ({"view_reduction": "avg"}, "view_reduction"),
])
def test_value_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    simclr.nt_xent_loss(jnp.ones((2, 4, 3)), **kwargs)


def test_integer_views_raise():
  with pytest.raises(ValueError, match="floating"):
    simclr.nt_xent_loss(jnp.ones((2, 4, 3), jnp.int32))
