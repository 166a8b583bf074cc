"""Tests for ssljax.losses.vicreg against an independent float64 NumPy VICReg.

Float32 tolerance: the kernels accumulate N·D products in float32, so values
agree with the float64 reference to ~1e-6 relative; 1e-5 leaves room for
summation-order differences between XLA and NumPy without hiding a wrong
normaliser (an N vs N − 1 slip is ≥ 1/N ≥ 3% at these batch sizes).
"""

from __future__ import annotations

import jax
from jax.test_util import check_grads
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import vicreg
from ssljax.testing import assert_distributed_equivalence

F32_RTOL = 1e-5

# Jitted entry points: one compilation per shape instead of one per primitive.
_vic = jax.jit(vicreg.vicreg_loss)
_vstats = jax.jit(vicreg.vicreg_stats)
_from_stats = jax.jit(vicreg.vicreg_from_stats)
_vinv = jax.jit(vicreg.invariance_term)
_var = jax.jit(vicreg.variance_term)
_cov = jax.jit(vicreg.covariance_term)
SHAPES = [(8, 4), (16, 3), (32, 16), (6, 9)]  # includes D > N


def _views(z1, z2):
  return jnp.stack([jnp.asarray(z1), jnp.asarray(z2)])


def _loss(z1, z2, **kw):
  """VICReg loss of the pair (z1, z2): views [2, N, D]."""
  return _vic(_views(z1, z2), **kw)


def _stats(z1, z2):
  return _vstats(_views(z1, z2))


def _inv(z1, z2):
  return _vinv(_views(z1, z2))


# ---------------------------------------------------------------- reference
def np_vicreg(z1, z2, sim=25.0, std=25.0, cov=1.0, eps=1e-4):
  """Official facebookresearch/vicreg main_vicreg.py formula (float64)."""
  z1 = np.asarray(z1, np.float64)
  z2 = np.asarray(z2, np.float64)
  d = z1.shape[1]
  inv = np.mean((z1 - z2) ** 2)

  def v(z):
    return np.mean(np.maximum(0.0, 1.0 - np.sqrt(np.var(z, axis=0, ddof=1) + eps)))

  def c(z):
    cm = np.cov(z, rowvar=False)  # unbiased (N − 1)
    return (np.sum(cm ** 2) - np.sum(np.diag(cm) ** 2)) / d

  variance = (v(z1) + v(z2)) / 2
  covariance = c(z1) + c(z2)
  return sim * inv + std * variance + cov * covariance, dict(invariance=inv, variance=variance,
                                                              covariance=covariance)


def _pair(seed, n, d, dtype=np.float64, offset=0.0, noise=0.5):
  rng = np.random.default_rng(seed)
  scale = rng.uniform(0.2, 2.0, size=d)  # some dims below the std hinge, some above
  mix = np.eye(d) + 0.3 * rng.normal(size=(d, d))  # correlated features
  z1 = (rng.normal(size=(n, d)) * scale) @ mix + offset
  z2 = z1 + noise * rng.normal(size=(n, d))
  return z1.astype(dtype), z2.astype(dtype)


# ---------------------------------------------------------------- values
@jax.jit
def _all_values(z1, z2):
  """Every public value for one pair, in one compilation (keeps the suite fast)."""
  loss, aux = vicreg.vicreg_loss((z1, z2))
  s_loss, s_aux = vicreg.vicreg_from_stats(vicreg.vicreg_stats((z1, z2)))
  blocks = dict(invariance=vicreg.invariance_term((z1, z2)),
                variance=(vicreg.variance_term(z1) + vicreg.variance_term(z2)) / 2,
                covariance=vicreg.covariance_term(z1) + vicreg.covariance_term(z2))
  return loss, aux, s_loss, s_aux, blocks


@pytest.mark.parametrize("n,d", SHAPES)
def test_matches_numpy_float64(n, d):
  """Direct path, stats path and building blocks all equal the float64 reference."""
  z1, z2 = _pair(n * 100 + d, n, d)
  ref, ref_aux = np_vicreg(z1, z2)
  with jax.enable_x64(True):
    loss, aux, s_loss, s_aux, blocks = _all_values(jnp.asarray(z1), jnp.asarray(z2))
  assert loss.dtype == jnp.float64
  np.testing.assert_allclose(loss, ref, rtol=1e-10)
  np.testing.assert_allclose(s_loss, ref, rtol=1e-10)
  for k in ref_aux:
    np.testing.assert_allclose(aux[k], ref_aux[k], rtol=1e-10, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(s_aux[k], ref_aux[k], rtol=1e-9, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(blocks[k], ref_aux[k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("n,d", SHAPES)
def test_matches_numpy_float32(n, d):
  z1, z2 = _pair(n * 7 + d, n, d)
  ref, _ = np_vicreg(z1, z2)
  loss, _, s_loss, _, _ = _all_values(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  assert loss.dtype == jnp.float32
  np.testing.assert_allclose(loss, ref, rtol=F32_RTOL)
  np.testing.assert_allclose(s_loss, ref, rtol=F32_RTOL)


def test_loss_is_weighted_sum_of_aux_terms():
  z1, z2 = _pair(1, 16, 5)
  loss, aux = _loss(z1, z2, sim_coeff=3.0, std_coeff=5.0, cov_coeff=7.0)
  np.testing.assert_allclose(
      loss, 3.0 * aux["invariance"] + 5.0 * aux["variance"] + 7.0 * aux["covariance"], rtol=1e-6)


def test_variance_uses_unbiased_estimator():
  """N − 1 (torch.var default) and not N (jnp.var default): checked against np.var(ddof=1)."""
  n, d, eps = 8, 6, 1e-4
  rng = np.random.default_rng(3)
  z = rng.normal(size=(n, d)) * rng.uniform(0.1, 0.9, size=d)  # all dims inside the hinge
  with jax.enable_x64(True):
    got = float(_var(jnp.asarray(z), eps=eps))
  unbiased = np.mean(np.maximum(0, 1 - np.sqrt(np.var(z, axis=0, ddof=1) + eps)))
  biased = np.mean(np.maximum(0, 1 - np.sqrt(np.var(z, axis=0, ddof=0) + eps)))
  np.testing.assert_allclose(got, unbiased, rtol=1e-12)
  assert abs(got - biased) > 1e-3, "the biased estimator would give (nearly) the same value"
  # Covariance: also N − 1 (np.cov's default ddof).
  with jax.enable_x64(True):
    c = float(_cov(jnp.asarray(z)))
  cm = np.cov(z, rowvar=False, ddof=1)
  np.testing.assert_allclose(c, (np.sum(cm ** 2) - np.sum(np.diag(cm) ** 2)) / d, rtol=1e-12)


def test_collapsed_embeddings():
  """All rows equal: std = sqrt(ε) in every dim, so v = 1 − sqrt(ε) per branch."""
  eps = 1e-4
  row = jnp.asarray(np.random.default_rng(0).normal(size=(1, 6)), jnp.float32)
  z = jnp.tile(row, (16, 1))
  loss, aux = _loss(z, z, eps=eps)
  np.testing.assert_allclose(aux["invariance"], 0.0, atol=0)
  np.testing.assert_allclose(aux["variance"], 1 - np.sqrt(eps), rtol=1e-6)
  np.testing.assert_allclose(aux["covariance"], 0.0, atol=1e-12)
  np.testing.assert_allclose(loss, 25.0 * (1 - np.sqrt(eps)), rtol=1e-6)  # = 24.75
  g = jax.jit(jax.grad(lambda a, b: _loss(a, b)[0], argnums=(0, 1)))(z, z)
  assert all(np.all(np.isfinite(x)) for x in g)


def test_analytic_small_example():
  """Hand-computed: z = [[1, 1], [−1, −1]] → C = [[2, 2], [2, 2]], std = sqrt(2 + ε) > 1."""
  z = jnp.array([[1.0, 1.0], [-1.0, -1.0]])
  np.testing.assert_allclose(_cov(z), 4.0, rtol=1e-6)
  np.testing.assert_allclose(_var(z), 0.0, atol=0)
  np.testing.assert_allclose(_inv(z, z + 2.0), 4.0, rtol=1e-6)


# ---------------------------------------------------------------- stats path
def test_stats_path_gradient_equals_direct_path():
  """Values are compared in test_matches_numpy_float64; here the gradients (D > N included)."""
  with jax.enable_x64(True):
    for n, d in [(8, 4), (6, 9)]:
      z1, z2 = (jnp.asarray(x) for x in _pair(n + 31 * d, n, d))
      gd = jax.jit(jax.grad(lambda a, b: _loss(a, b)[0], argnums=(0, 1)))(z1, z2)
      gs = jax.jit(jax.grad(lambda a, b: _from_stats(_stats(a, b))[0],
                            argnums=(0, 1)))(z1, z2)
      for x, y in zip(gs, gd):
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-12)


def test_stats_are_additive_over_micro_batches():
  z1, z2 = _pair(5, 24, 4)
  with jax.enable_x64(True):
    parts = [_stats(z1[s], z2[s]) for s in (slice(0, 10), slice(10, 24))]
    merged = jax.tree.map(jnp.add, *parts)
    whole = _stats(z1, z2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), merged, whole)
    np.testing.assert_allclose(_from_stats(merged)[0], np_vicreg(z1, z2)[0], rtol=1e-10)


def test_two_pass_is_accurate_for_offset_embeddings():
  """|mean| ≫ std in float32: the centred main path stays accurate (the reason it is the default).

  The one-pass stats path loses ~|mean|²·2⁻²⁴ of variance to cancellation; its
  error is only reported in the assertion message, since it is a documented
  limitation rather than a contract.
  """
  z1, z2 = _pair(11, 64, 8, offset=300.0, noise=0.2)
  ref, _ = np_vicreg(z1, z2)
  main, _ = _loss(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32))
  one_pass, _ = _from_stats(
      _stats(jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32)))
  np.testing.assert_allclose(main, ref, rtol=1e-4,
                             err_msg=f"one-pass rel err {abs(float(one_pass) - ref) / ref:.2e}")
  assert np.isfinite(one_pass)


# ---------------------------------------------------------------- properties
def test_view_swap_symmetry_and_permutation_invariance():
  z1, z2 = _pair(2, 16, 5, dtype=np.float32)
  a = _loss(z1, z2)[0]
  np.testing.assert_allclose(_loss(z2, z1)[0], a, rtol=1e-6)
  perm = np.random.default_rng(0).permutation(16)
  np.testing.assert_allclose(_loss(z1[perm], z2[perm])[0], a, rtol=1e-5)


def test_jit_grad_and_finite_difference_gradients():
  z1, z2 = _pair(9, 6, 3, dtype=np.float32)
  # jit vs eager (op-by-op) execution of the same kernel.
  np.testing.assert_allclose(_loss(z1, z2)[0], vicreg.vicreg_loss((z1, z2))[0], rtol=1e-6)
  g = jax.jit(jax.grad(lambda a, b: vicreg.vicreg_loss((a, b))[0], argnums=(0, 1)))(z1, z2)
  assert all(np.all(np.isfinite(x)) for x in g)
  with jax.enable_x64(True):
    args = tuple(jnp.asarray(x, jnp.float64) for x in (z1, z2))
    check_grads(lambda a, b: _loss(a, b)[0], args, order=1, modes=("rev",))
    check_grads(lambda a, b: _from_stats(_stats(a, b))[0], args, order=1, modes=("rev",))


def test_vmap_over_hyperparameters():
  z1, z2 = _pair(4, 12, 4, dtype=np.float32)
  coeffs = jnp.array([1.0, 25.0, 50.0])
  epss = jnp.array([1e-4, 1e-2, 1.0])
  out = jax.vmap(lambda c, e: _loss(z1, z2, std_coeff=c, eps=e)[0])(coeffs, epss)
  for i in range(3):
    ref = np_vicreg(z1, z2, std=float(coeffs[i]), eps=float(epss[i]))[0]
    np.testing.assert_allclose(out[i], ref, rtol=F32_RTOL)


def test_input_validation():
  with pytest.raises(ValueError, match="views must be"):
    _vic((jnp.ones((8, 4)), jnp.ones((8, 5))))
  with pytest.raises(ValueError, match="at least 2"):
    _var(jnp.ones((1, 4)))
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    _cov(jnp.ones((2, 3, 4)))
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    _var(jnp.ones((8,)))


@pytest.mark.parametrize("fn", [vicreg.vicreg_loss, vicreg.vicreg_stats, vicreg.invariance_term])
@pytest.mark.parametrize("views", [
    np.ones((64, 2, 16), np.float32),          # examples-first [N, V, D]
    np.ones((3, 8, 4), np.float32),            # V = 3
    np.ones((8, 4), np.float32),               # rank 2
    np.ones((2, 1, 4), np.float32),            # N = 1 < V
    (np.ones((8, 4), np.float32), np.ones((8, 5), np.float32)),   # mismatched views
], ids=["examples_first", "three_views", "rank2", "one_example", "mismatched"])
def test_bad_layouts_raise(fn, views):
  with pytest.raises(ValueError, match="views must be"):
    fn(views)


def test_sequence_input_equals_stacked_input_and_aux_scalars():
  z1, z2 = _pair(3, 8, 4, dtype=np.float32)
  stacked = np.stack([z1, z2])
  want, aux = vicreg.vicreg_loss(stacked)
  for seq in ([z1, z2], (z1, z2)):
    got, got_aux = vicreg.vicreg_loss(seq)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    for k in aux:
      np.testing.assert_array_equal(np.asarray(got_aux[k]), np.asarray(aux[k]))
    np.testing.assert_array_equal(np.asarray(vicreg.invariance_term(seq)),
                                  np.asarray(vicreg.invariance_term(stacked)))
    jax.tree.map(np.testing.assert_array_equal, vicreg.vicreg_stats(seq),
                 vicreg.vicreg_stats(stacked))
  assert all(jnp.shape(v) == () for v in aux.values())
  assert all(jnp.shape(v) == () for v in vicreg.vicreg_from_stats(vicreg.vicreg_stats(seq))[1].values())


# ---------------------------------------------------------------- distributed
DIST_KERNELS = {
    "vicreg_loss": lambda v, axis_name: vicreg.vicreg_loss(v, axis_name=axis_name)[0],
    "stats_path": lambda v, axis_name: vicreg.vicreg_from_stats(
        vicreg.vicreg_stats(v, axis_name=axis_name))[0],
    "invariance": lambda v, axis_name: vicreg.invariance_term(v, axis_name=axis_name),
    "variance": lambda v, axis_name: (vicreg.variance_term(v[0], axis_name=axis_name)
                                      + 2.0 * vicreg.variance_term(v[1], axis_name=axis_name)),
    "covariance": lambda v, axis_name: (vicreg.covariance_term(v[0], axis_name=axis_name)
                                        + 2.0 * vicreg.covariance_term(v[1], axis_name=axis_name)),
}


@pytest.mark.parametrize("name", sorted(DIST_KERNELS))
def test_distributed_equivalence(name):
  """8 devices × 2 rows: value and gradient equal in single, jit (Auto mesh) and shard_map modes."""
  views = np.stack(_pair(21, 16, 6, dtype=np.float32))
  assert_distributed_equivalence(DIST_KERNELS[name], (views,), batch_axes=(1,), argnums=0)
