"""Tests of ssljax.losses.corinfomax against an independent float64 NumPy model
of the official ``CovarianceLoss`` (serdarozsoy/corinfomax-ssl, cifars-tiny/loss.py).

Float32 tolerance: rtol 1e-4 on the loss and 1e-5 (abs) on the state. The
log-det of R (condition number up to ~1e2 here) and the centring of unit-norm
rows lose ~3 digits of float32's 7; measured errors are ~1e-6 relative.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel, testing
from ssljax.losses import corinfomax as cim


# ----------------------------------------------------------------------------
# Independent NumPy reference (float64), written from the official algorithm.
# ----------------------------------------------------------------------------


def np_normalize(z):
  return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def np_step(z1, z2, state, *, alpha=250.0, la_R=0.01, la_mu=0.01, eps=1e-8, normalize=True):
  """One forward call of the official loss: returns (loss, new_state, (inv, cov))."""
  z1 = np.asarray(z1, np.float64)
  z2 = np.asarray(z2, np.float64)
  if normalize:
    z1, z2 = np_normalize(z1), np_normalize(z2)
  n, d = z1.shape
  r_olds = (np.asarray(state[0], np.float64), np.asarray(state[1], np.float64))
  mu_olds = (np.asarray(state[2], np.float64), np.asarray(state[3], np.float64))
  rs, mus, lds = [], [], []
  for z, r_old, mu_old in zip((z1, z2), r_olds, mu_olds):
    mu = la_mu * mu_old + (1 - la_mu) * z.mean(axis=0)
    zc = z - mu
    cov = np.zeros((d, d))
    for i in range(n):  # explicit sum of outer products
      cov += np.outer(zc[i], zc[i])
    cov /= n
    r = la_R * r_old + (1 - la_R) * cov
    sign, ld = np.linalg.slogdet(r + eps * np.eye(d))
    assert sign > 0
    rs.append(r)
    mus.append(mu)
    lds.append(ld)
  inv = np.mean((z1 - z2)**2)
  cov_loss = -(lds[0] + lds[1]) / d
  return alpha * inv + cov_loss, (rs[0], rs[1], mus[0], mus[1]), (inv, cov_loss)


_loss = jax.jit(cim.corinfomax_loss, static_argnames=("normalize", "axis_name"))
_logdet = jax.jit(cim.psd_logdet, static_argnames=("dtype",))


def np_init(d, r_init=1.0):
  return (r_init * np.eye(d), r_init * np.eye(d), np.zeros(d), np.zeros(d))


def _views(seed, n, d, dtype=np.float64):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n, d)) + 0.5
  z2 = z1 + 0.3 * rng.normal(size=(n, d))
  return z1.astype(dtype), z2.astype(dtype)


# ----------------------------------------------------------------------------
# Log-det
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 3, 17])
def test_psd_logdet_matches_slogdet(d):
  rng = np.random.default_rng(d)
  x = rng.normal(size=(max(1, d // 2), d))
  a = x.T @ x / x.shape[0]  # rank-deficient for d > 1
  for eps in (1e-8, 1e-3):
    ref = np.linalg.slogdet(a + eps * np.eye(d))[1]
    with jax.enable_x64(True):
      got = float(_logdet(jnp.asarray(a), eps=eps))
    # cond(A + 1e-8 I) ~ 1e8: the smallest eigenvalues carry ~1e-8 relative
    # error in any float64 factorisation, i.e. ~1e-8 absolute in each log.
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=d * 1e-7)
  # float32, well conditioned: rtol 1e-5 (Cholesky of a cond ~1e2 matrix).
  b = a + 0.1 * np.eye(d)
  np.testing.assert_allclose(float(_logdet(jnp.asarray(b, jnp.float32))),
                             np.linalg.slogdet(b)[1], rtol=1e-5, atol=1e-5)


def test_psd_logdet_float64_factorisation_option():
  a = np.diag([1.0, 1e-3, 1e-6])
  with jax.enable_x64(True):
    got = _logdet(jnp.asarray(a, jnp.float32), eps=1e-8, dtype=jnp.float64)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(float(got), np.linalg.slogdet(a + 1e-8 * np.eye(3))[1], rtol=1e-6)
  with pytest.raises(ValueError, match="enable_x64"):
    cim.psd_logdet(jnp.eye(3), dtype=jnp.float64)


# ----------------------------------------------------------------------------
# State semantics vs the official algorithm
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("n,d,la", [(8, 4, 0.01), (5, 7, 0.1), (32, 16, 0.5)])
def test_three_steps_match_numpy_float64(n, d, la):
  with jax.enable_x64(True):
    state = cim.corinfomax_init_state(d, dtype=jnp.float64)
    ref_state = np_init(d)
    for step in range(3):
      z1, z2 = _views(100 * step + n, n, d)
      ref_loss, ref_state, (ref_inv, ref_cov) = np_step(z1, z2, ref_state, la_R=la, la_mu=la)
      loss, aux, state = _loss((jnp.asarray(z1), jnp.asarray(z2)), state=state, la_R=la, la_mu=la)
      np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-9)
      np.testing.assert_allclose(float(aux["invariance"]), ref_inv, rtol=1e-9)
      np.testing.assert_allclose(float(aux["cov_loss"]), ref_cov, rtol=1e-9)
      for got, ref in zip(state, ref_state):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("n,d", [(16, 8), (6, 12)])
def test_three_steps_match_numpy_float32(n, d):
  state = cim.corinfomax_init_state(d)
  ref_state = np_init(d)
  for step in range(3):
    z1, z2 = _views(7 + step, n, d)
    ref_loss, ref_state, _ = np_step(z1, z2, ref_state)
    loss, _, state = _loss(jnp.stack([z1, z2]).astype(jnp.float32), state=state)
    assert state.r1.dtype == jnp.float32
    np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-4)
    for got, ref in zip(state, ref_state):
      np.testing.assert_allclose(np.asarray(got), ref, atol=1e-5)


def test_gradient_matches_finite_differences_of_numpy_reference():
  """Gradient flows through this batch's mean and covariance, not the old state."""
  n, d = 5, 3
  z1, z2 = _views(3, n, d)
  ref_state = np_init(d)
  _, ref_state, _ = np_step(*_views(4, n, d), ref_state, la_R=0.3, la_mu=0.3)  # non-trivial state
  kw = dict(alpha=2.0, la_R=0.3, la_mu=0.3, eps=1e-3)

  def np_loss(a, b):
    return np_step(a, b, ref_state, **kw)[0]

  h = 1e-6
  fd = []
  for base, which in ((z1, 0), (z2, 1)):
    g = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
      up, dn = base.copy(), base.copy()
      up[idx] += h
      dn[idx] -= h
      args_up = (up, z2) if which == 0 else (z1, up)
      args_dn = (dn, z2) if which == 0 else (z1, dn)
      g[idx] = (np_loss(*args_up) - np_loss(*args_dn)) / (2 * h)
    fd.append(g)
  with jax.enable_x64(True):
    state = cim.CorInfoMaxState(*(jnp.asarray(s) for s in ref_state))

    def f(a, b, st):
      return cim.corinfomax_loss((a, b), state=st, **kw)[0]

    g1, g2, gstate = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(jnp.asarray(z1), jnp.asarray(z2),
                                                             state)
    np.testing.assert_allclose(np.asarray(g1), fd[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(g2), fd[1], rtol=1e-5, atol=1e-7)
    for leaf in gstate:  # the old state is stop-gradiented
      np.testing.assert_array_equal(np.asarray(leaf), 0.0)


def test_isotropic_ground_truth():
  """Rows ±e_i, no memory: R = I/D exactly and L_cov = 2 log D (+ eps effect)."""
  d = 6
  z = np.concatenate([np.eye(d), -np.eye(d)]).astype(np.float64)
  with jax.enable_x64(True):
    state = cim.corinfomax_init_state(d, dtype=jnp.float64)
    loss, aux, new = _loss((jnp.asarray(z), jnp.asarray(z)), state=state, la_R=0.0, la_mu=0.0,
                           eps=0.0, jitter=0.0)
    np.testing.assert_allclose(np.asarray(new.r1), np.eye(d) / d, atol=1e-15)
    np.testing.assert_allclose(float(aux["cov_loss"]), 2 * np.log(d), rtol=1e-12)
    assert float(aux["invariance"]) == 0.0
    np.testing.assert_allclose(float(loss), 2 * np.log(d), rtol=1e-12)


# ----------------------------------------------------------------------------
# Stability
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["identical_rows", "n_less_than_d", "rank2"])
def test_collapsed_batches_give_finite_loss_and_grads_float32(case):
  rng = np.random.default_rng(0)
  d = 64
  if case == "identical_rows":
    z1 = np.repeat(rng.normal(size=(1, d)), 16, axis=0)
    z2 = z1.copy()
  elif case == "n_less_than_d":
    z1, z2 = rng.normal(size=(16, d)), rng.normal(size=(16, d))
  else:  # rank 2: float32 rounding makes R + 1e-8 I indefinite after a few steps
    z1 = rng.normal(size=(16, 2)) @ rng.normal(size=(2, d))
    z2 = rng.normal(size=(16, 2)) @ rng.normal(size=(2, d))
  z1, z2 = jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32)

  def loss_and_state(a, b, st):
    loss, aux, new_state = cim.corinfomax_loss((a, b), state=st)
    return loss, (aux, new_state)

  f = jax.jit(jax.value_and_grad(loss_and_state, argnums=(0, 1), has_aux=True))
  state = cim.corinfomax_init_state(d)
  for _ in range(8):
    (loss, (aux, state)), grads = f(z1, z2, state)
    assert np.isfinite(float(loss)), aux
    for g in grads:
      assert np.all(np.isfinite(np.asarray(g)))
    for leaf in state:
      assert np.all(np.isfinite(np.asarray(leaf)))


# ----------------------------------------------------------------------------
# Sufficient statistics
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("x64", [True, False])
def test_stats_reduced_over_shards_match_loss(x64):
  n, d, shards = 24, 5, 4
  z1, z2 = _views(11, n, d)
  with jax.enable_x64(x64):
    dtype = jnp.float64 if x64 else jnp.float32
    state = cim.corinfomax_init_state(d, dtype=dtype)
    _, _, state = _loss(jnp.asarray(np.stack([z1, z2]), dtype), state=state)
    views_b = jnp.asarray(np.stack(_views(12, n, d)), dtype)
    ref_loss, _, ref_state = _loss(views_b, state=state)

    @jax.jit
    def from_shards(views, st):  # per-shard statistics, summed as a psum would
      parts = [cim.corinfomax_stats(v, state=st) for v in jnp.split(views, shards, axis=1)]
      return cim.corinfomax_from_stats(jax.tree.map(lambda *xs: sum(xs), *parts), state=st)

    loss, _, new_state = from_shards(views_b, state)
    rtol = 1e-10 if x64 else 1e-5
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=rtol)
    for a, b in zip(new_state, ref_state):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol * 1e-2)


# ----------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------


def test_view_swap_symmetry_and_batch_permutation():
  d = 6
  z1, z2 = _views(5, 12, d)
  with jax.enable_x64(True):
    state = cim.corinfomax_init_state(d, dtype=jnp.float64)
    _, _, state = _loss((jnp.asarray(z1), jnp.asarray(z2)), state=state)  # asymmetric state
    z1b, z2b = _views(6, 12, d)
    a, b = jnp.asarray(z1b), jnp.asarray(z2b)
    loss, _, new = _loss((a, b), state=state)
    swapped_state = cim.CorInfoMaxState(state.r2, state.r1, state.mu2, state.mu1)
    loss_sw, _, new_sw = _loss((b, a), state=swapped_state)
    np.testing.assert_allclose(float(loss_sw), float(loss), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(new_sw.r1), np.asarray(new.r2), rtol=1e-12)
    perm = np.random.default_rng(0).permutation(12)
    loss_p, _, new_p = _loss((a[perm], b[perm]), state=state)
    np.testing.assert_allclose(float(loss_p), float(loss), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(new_p.r1), np.asarray(new.r1), rtol=1e-10, atol=1e-15)


def test_jit_grad_vmap_over_hyperparameters():
  d = 4
  z1, z2 = (jnp.asarray(v, jnp.float32) for v in _views(9, 10, d))
  state = cim.corinfomax_init_state(d)
  alphas = jnp.array([1.0, 250.0, 1000.0])
  f = jax.jit(jax.vmap(lambda a: cim.corinfomax_loss((z1, z2), state=state, alpha=a)[0]))
  losses = np.asarray(f(alphas))
  for a, got in zip(alphas, losses):
    np.testing.assert_allclose(got, float(_loss((z1, z2), state=state, alpha=float(a))[0]),
                               rtol=1e-6)
  g = jax.jit(jax.vmap(jax.grad(lambda la, x: cim.corinfomax_loss((x, z2), state=state,
                                                                  la_R=la)[0],
                                argnums=1), in_axes=(0, None)))(jnp.array([0.01, 0.1]), z1)
  assert g.shape == (2, 10, d) and np.all(np.isfinite(np.asarray(g)))


def test_input_errors():
  state = cim.corinfomax_init_state(4)
  with pytest.raises(ValueError, match="corinfomax_init_state\\(5\\)"):
    cim.corinfomax_loss(jnp.ones((2, 8, 5)), state=state)
  with pytest.raises(ValueError, match="dim >= 1"):
    cim.corinfomax_init_state(0)
  with pytest.raises(TypeError):  # the old positional (z1, z2, state) call fails loudly
    cim.corinfomax_loss(jnp.ones((8, 4)), jnp.ones((8, 4)), state)


_LAYOUT_ERRORS = {
    "three_views": jnp.ones((3, 8, 4)),
    "one_embedding": jnp.ones((8, 4)),
    "rank4": jnp.ones((2, 8, 4, 1)),
    "mismatched_shapes": (jnp.ones((8, 4)), jnp.ones((7, 4))),
    "examples_first": jnp.ones((64, 2, 16)),
}


@pytest.mark.parametrize("fn", ["corinfomax_loss", "corinfomax_stats", "corinfomax_init_state"])
@pytest.mark.parametrize("case", sorted(_LAYOUT_ERRORS))
def test_layout_errors(fn, case):
  with pytest.raises(ValueError, match=r"\[V=2, N, D\]"):
    getattr(cim, fn)(_LAYOUT_ERRORS[case])


def test_sequence_input_equals_stacked_and_aux_is_scalar():
  z1, z2 = (jnp.asarray(v, jnp.float32) for v in _views(13, 16, 6))
  state = cim.corinfomax_init_state(6)
  stacked = _loss(jnp.stack([z1, z2]), state=state)
  for views in ((z1, z2), [z1, z2]):
    got = _loss(views, state=state)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 got, stacked)
  loss, aux, _ = stacked
  assert loss.shape == ()
  assert sorted(aux) == ["cov_loss", "invariance", "logdet1", "logdet2"]
  for value in aux.values():
    assert value.shape == ()


def test_state_none_is_the_initial_state_in_the_input_dtype():
  n, d = 12, 5
  z = np.stack(_views(14, n, d))
  # float32 (and bfloat16: promoted to at least float32) -> float32 state.
  for dtype in (jnp.float32, jnp.bfloat16):
    views = jnp.asarray(z, dtype)
    init = cim.corinfomax_init_state(views)
    assert init.r1.dtype == jnp.float32 and init.r1.shape == (d, d)
    got = _loss(views)
    ref = _loss(views, state=cim.corinfomax_init_state(d))
    assert got[2].r1.dtype == jnp.float32
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), got, ref)
  with jax.enable_x64(True):
    views = jnp.asarray(z)
    for init in (cim.corinfomax_init_state(views), cim.corinfomax_init_state(tuple(views))):
      assert init.r1.dtype == jnp.float64 and init.mu2.dtype == jnp.float64
    assert cim.corinfomax_init_state(d).r1.dtype == jnp.float32  # an int D: float32 by default
    assert cim.corinfomax_init_state(views, dtype=jnp.float32).r1.dtype == jnp.float32
    loss, _, new_state = _loss(views)
    assert loss.dtype == jnp.float64
    assert all(leaf.dtype == jnp.float64 for leaf in new_state)
    # ...and it is the float64 official computation (the three-step test's reference).
    ref_loss, ref_state, _ = np_step(z[0], z[1], np_init(d))
    np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-9)
    for got, ref in zip(new_state, ref_state):
      np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-9, atol=1e-13)
    stats_state = cim.corinfomax_from_stats(cim.corinfomax_stats(views))[2]
    assert all(leaf.dtype == jnp.float64 for leaf in stats_state)


def test_normalize_has_finite_gradient_at_a_zero_row():
  """ops.l2_normalize: a zero embedding row maps to 0 with a finite gradient (norm floor 1e-12)."""
  z1, z2 = (jnp.asarray(v, jnp.float32) for v in _views(15, 8, 4))
  z1 = z1.at[3].set(0.0)
  g = jax.jit(jax.grad(lambda a: cim.corinfomax_loss((a, z2))[0]))(z1)
  assert np.all(np.isfinite(np.asarray(g)))


# ----------------------------------------------------------------------------
# Distributed equivalence (value, gradient and new state)
# ----------------------------------------------------------------------------


def _loss_fn(views, r1, r2, mu1, mu2, *, axis_name=None, out="loss"):
  loss, _, new = cim.corinfomax_loss(views, state=cim.CorInfoMaxState(r1, r2, mu1, mu2),
                                     axis_name=axis_name)
  return loss if out == "loss" else new


def test_distributed_equivalence():
  n, d = 32, 6
  z1, z2 = _views(21, n, d, np.float32)
  state = cim.corinfomax_init_state(d)
  _, _, state = _loss((jnp.asarray(z2), jnp.asarray(z1)), state=state)
  args = (jnp.stack([jnp.asarray(z1), jnp.asarray(z2)]), *state)
  batch_axes = (1, None, None, None, None)  # views [V, N, D]: the batch is axis 1
  testing.assert_distributed_equivalence(_loss_fn, args, batch_axes=batch_axes, argnums=0,
                                         rtol=1e-5, atol=1e-6)
  # New state: single device vs jit on the Auto mesh vs shard_map.
  ref = jax.jit(functools.partial(_loss_fn, out="state"))(*args)
  mesh = parallel.make_data_mesh()
  assert len(mesh.devices) == 8
  specs = (P(None, "data"),) + (P(),) * 4
  sharded = tuple(jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, specs))
  got_jit = jax.jit(functools.partial(_loss_fn, out="state"))(*sharded)
  got_sm = jax.jit(jax.shard_map(functools.partial(_loss_fn, out="state", axis_name="data"),
                                 mesh=mesh, in_specs=specs, out_specs=P()))(*sharded)
  for got in (got_jit, got_sm):
    for a, b in zip(got, ref):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
