"""Tests for ssljax.losses.superinfo (Gaussian KL, MIB superfluous terms, SuperInfo loss).

Float32 tolerance: the loss adds an InfoNCE term (log-sum-exp of cosines/τ,
rtol ≈ 1e-6) and KL terms built from exp(logvar) and squared differences
(relative round-off ≈ 1e-7 per element, summed over D); rtol = 2e-5 for the
total, which can be close to zero from cancellation, so atol = 1e-5 as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from jax.test_util import check_grads

from ssljax.losses import superinfo
from ssljax.testing import assert_distributed_equivalence

F32_RTOL, F32_ATOL = 2e-5, 1e-5

_kl = jax.jit(superinfo.gaussian_kl)
_skl = jax.jit(superinfo.skl_superfluous_terms)
_si = jax.jit(superinfo.superinfo_loss, static_argnames=("axis_name",))


def _stack(a, b):
  return None if a is None else jnp.stack([jnp.asarray(a), jnp.asarray(b)])


def _loss(mu1, mu2, *, logvar1=None, logvar2=None, z1=None, z2=None, **kw):
  """The loss in the former per-view keywords: views = means, logvars, samples [2, N, ·]."""
  return _si(_stack(mu1, mu2), logvars=_stack(logvar1, logvar2), samples=_stack(z1, z2), **kw)


# ---------------------------------------------------------------- references
def np_kl(mu1, lv1, mu2, lv2):
  """KL(N1‖N2) per example from the textbook form with standard deviations."""
  s1, s2 = np.exp(0.5 * np.asarray(lv1, np.float64)), np.exp(0.5 * np.asarray(lv2, np.float64))
  d = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
  return np.sum(np.log(s2 / s1) + (s1 ** 2 + d ** 2) / (2 * s2 ** 2) - 0.5, axis=-1)


def np_infonce_bound(z1, z2, tau):
  """log(2N − 1) − mean over the 2N anchors of the NT-Xent loss (loops, float64)."""
  h = np.concatenate([z1, z2]).astype(np.float64)
  h = h / np.linalg.norm(h, axis=1, keepdims=True)
  m = h.shape[0]
  n = m // 2
  total = 0.0
  for k in range(m):
    den = sum(math.exp(h[k] @ h[j] / tau) for j in range(m) if j != k)
    total += -(h[k] @ h[(k + n) % m] / tau - math.log(den))
  return math.log(m - 1) - total / m


def np_superinfo(mu1, mu2, lv1, lv2, cp, c1, c2, tau, z1=None, z2=None):
  z1 = mu1 if z1 is None else z1
  z2 = mu2 if z2 is None else z2
  mi = np_infonce_bound(z1, z2, tau)
  s1 = np.mean(np_kl(mu1, lv1, mu2, lv2))
  s2 = np.mean(np_kl(mu2, lv2, mu1, lv1))
  return -cp * mi + c1 * s1 + c2 * s2, mi, s1, s2


def _rand(shape, seed, dtype=np.float64):
  return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _inputs(n, d, seed, dtype=np.float64):
  mu1 = _rand((n, d), seed, dtype)
  mu2 = (mu1 + 0.5 * _rand((n, d), seed + 1, dtype)).astype(dtype)
  lv1 = (0.3 * _rand((n, d), seed + 2, dtype)).astype(dtype)
  lv2 = (0.3 * _rand((n, d), seed + 3, dtype)).astype(dtype)
  return mu1, mu2, lv1, lv2


# ---------------------------------------------------------------- Gaussian KL
def test_gaussian_kl_matches_numpy_and_analytic():
  mu1, mu2, lv1, lv2 = _inputs(6, 5, 0)
  with jax.enable_x64(True):
    got = _kl(*map(jnp.asarray, (mu1, lv1, mu2, lv2)))
    same = _kl(*map(jnp.asarray, (mu1, lv1, mu1, lv1)))
    # Scalar closed form: KL(N(0, 1) ‖ N(1, 2²)) = log 2 + (1 + 1)/(2·4) − ½.
    scalar = _kl(jnp.zeros(1), jnp.zeros(1), jnp.ones(1), jnp.full(1, 2 * math.log(2.0)))
  np.testing.assert_allclose(np.asarray(got), np_kl(mu1, lv1, mu2, lv2), rtol=1e-10)
  assert np.all(np.asarray(got) > 0)
  np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-14)
  np.testing.assert_allclose(float(scalar), math.log(2.0) + 0.25 - 0.5, rtol=1e-12)


def test_kl_monte_carlo_agrees_with_closed_form():
  # Independent check of the closed form: E_{z~p1}[log p1(z) − log p2(z)] by sampling.
  rng = np.random.default_rng(1)
  mu1, mu2 = np.array([0.3, -1.0]), np.array([-0.2, 0.5])
  lv1, lv2 = np.array([0.2, -0.4]), np.array([-0.1, 0.3])
  s1, s2 = np.exp(0.5 * lv1), np.exp(0.5 * lv2)
  z = mu1 + s1 * rng.normal(size=(400_000, 2))
  logp = lambda x, m, s: -0.5 * ((x - m) / s) ** 2 - np.log(s)
  mc = np.mean(np.sum(logp(z, mu1, s1) - logp(z, mu2, s2), axis=1))
  with jax.enable_x64(True):
    got = float(_kl(*map(jnp.asarray, (mu1, lv1, mu2, lv2))))
  assert abs(got - mc) < 5e-3, (got, mc)


def test_superfluous_terms_fixed_and_mixed_sigma():
  mu1, mu2, lv1, _ = _inputs(5, 4, 2)
  sigma = 0.3
  with jax.enable_x64(True):
    kl12, kl21 = _skl(_stack(mu1, mu2), fixed_sigma=sigma)
    # Mixed: view 1 has its own log-variances, view 2 the fixed σ (log σ² = 2 log σ).
    lv_fixed = np.full_like(mu2, 2 * math.log(sigma))
    m12, m21 = _skl(_stack(mu1, mu2), logvars=_stack(lv1, lv_fixed))
  # Both fixed: KL12 = KL21 = ||μ1 − μ2||² / (2σ²).
  want = np.sum((mu1 - mu2) ** 2, axis=1) / (2 * sigma ** 2)
  np.testing.assert_allclose(np.asarray(kl12), want, rtol=1e-10)
  np.testing.assert_allclose(np.asarray(kl21), want, rtol=1e-10)
  np.testing.assert_allclose(np.asarray(m12), np_kl(mu1, lv1, mu2, lv_fixed), rtol=1e-10)
  np.testing.assert_allclose(np.asarray(m21), np_kl(mu2, lv_fixed, mu1, lv1), rtol=1e-10)


# ---------------------------------------------------------------- SuperInfo loss
@pytest.mark.parametrize("n,d", [(3, 2), (8, 5)])
def test_superinfo_matches_numpy_float64(n, d):
  mu1, mu2, lv1, lv2 = _inputs(n, d, 10 + n)
  with jax.enable_x64(True):
    args = tuple(map(jnp.asarray, (mu1, mu2)))
    got, aux = _loss(*args, logvar1=jnp.asarray(lv1), logvar2=jnp.asarray(lv2),
                     coef_predictive=0.7, coef_superfluous1=0.05, coef_superfluous2=-0.02,
                     temperature=0.4)
    fixed, _ = _loss(*args)          # defaults: σ = 0.1, c = (1, 1e-3, 1e-3), τ = 0.1
  want, mi, s1, s2 = np_superinfo(mu1, mu2, lv1, lv2, 0.7, 0.05, -0.02, 0.4)
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(float(got), want, rtol=1e-10)
  np.testing.assert_allclose(float(aux["mi_predictive"]), mi, rtol=1e-10)
  np.testing.assert_allclose(float(aux["superfluous1"]), s1, rtol=1e-10)
  np.testing.assert_allclose(float(aux["superfluous2"]), s2, rtol=1e-10)
  np.testing.assert_allclose(float(aux["skl"]), 0.5 * (s1 + s2), rtol=1e-10)
  lv = np.full_like(mu1, 2 * math.log(0.1))
  np.testing.assert_allclose(float(fixed), np_superinfo(mu1, mu2, lv, lv, 1.0, 1e-3, 1e-3, 0.1)[0],
                             rtol=1e-10)


def test_superinfo_separate_predictive_embeddings_and_float32():
  mu1, mu2, lv1, lv2 = _inputs(8, 4, 20, np.float32)
  z1, z2 = _rand((8, 6), 30, np.float32), _rand((8, 6), 31, np.float32)
  got, _ = _loss(*map(jnp.asarray, (mu1, mu2)), logvar1=lv1, logvar2=lv2, z1=z1, z2=z2,
                 coef_superfluous1=0.01, coef_superfluous2=0.01)
  assert got.dtype == jnp.float32
  want = np_superinfo(*(a.astype(np.float64) for a in (mu1, mu2, lv1, lv2)), 1.0, 0.01, 0.01,
                      0.1, z1=z1.astype(np.float64), z2=z2.astype(np.float64))[0]
  np.testing.assert_allclose(float(got), want, rtol=F32_RTOL, atol=F32_ATOL)


def test_symmetry_and_permutation_invariance():
  mu1, mu2, lv1, lv2 = _inputs(6, 3, 40)
  perm = np.random.default_rng(3).permutation(6)
  kw = dict(coef_superfluous1=0.1, coef_superfluous2=0.1)
  with jax.enable_x64(True):
    a, aux_a = _loss(jnp.asarray(mu1), jnp.asarray(mu2), logvar1=jnp.asarray(lv1),
                     logvar2=jnp.asarray(lv2), **kw)
    b, aux_b = _loss(jnp.asarray(mu2), jnp.asarray(mu1), logvar1=jnp.asarray(lv2),
                     logvar2=jnp.asarray(lv1), **kw)
    c, _ = _loss(jnp.asarray(mu1[perm]), jnp.asarray(mu2[perm]),
                 logvar1=jnp.asarray(lv1[perm]), logvar2=jnp.asarray(lv2[perm]), **kw)
  np.testing.assert_allclose(float(b), float(a), rtol=1e-12)
  np.testing.assert_allclose(float(c), float(a), rtol=1e-12)
  # Swapping the views exchanges the two superfluous terms.
  np.testing.assert_allclose(float(aux_b["superfluous1"]), float(aux_a["superfluous2"]), rtol=1e-12)


def test_vmap_over_coefficients_is_linear():
  mu1, mu2, lv1, lv2 = _inputs(6, 3, 50, np.float32)
  coefs = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, -0.2, 0.3]])
  f = jax.jit(jax.vmap(lambda c: superinfo.superinfo_loss(
      (mu1, mu2), logvars=(lv1, lv2), coef_predictive=c[0], coef_superfluous1=c[1],
      coef_superfluous2=c[2])))
  losses, aux = f(coefs)
  losses = np.asarray(losses)
  mi, s1, s2 = (float(aux[k][0]) for k in ("mi_predictive", "superfluous1", "superfluous2"))
  np.testing.assert_allclose(losses[:3], [-mi, s1, s2], rtol=F32_RTOL)
  np.testing.assert_allclose(losses[3], -0.5 * mi - 0.2 * s1 + 0.3 * s2, rtol=F32_RTOL,
                             atol=F32_ATOL)


def test_gradients_and_check_grads():
  mu1, mu2, lv1, lv2 = _inputs(3, 2, 60)
  with jax.enable_x64(True):
    args = tuple(map(jnp.asarray, (mu1, mu2, lv1, lv2)))
    f = jax.jit(lambda a, b, c, d: superinfo.superinfo_loss(
        (a, b), logvars=(c, d), coef_superfluous1=0.1, coef_superfluous2=0.2,
        temperature=0.5)[0])
    grads = jax.grad(f, argnums=(0, 1, 2, 3))(*args)
    assert all(np.all(np.isfinite(g)) for g in grads)
    check_grads(f, args, order=1, modes=("rev",))
    # Fixed σ as a traced hyper-parameter.
    fs = jax.jit(lambda s: superinfo.superinfo_loss(args[:2], fixed_sigma=s)[0])
    check_grads(fs, (jnp.float64(0.5),), order=1, modes=("rev",))


def test_reparameterize():
  mu, lv = jnp.array([[1.0, -2.0]]), jnp.array([[0.0, math.log(4.0)]])
  key = jax.random.key(0)
  z = superinfo.reparameterize(key, mu, lv)
  eps = jax.random.normal(key, mu.shape)
  np.testing.assert_allclose(np.asarray(z), np.asarray(mu + jnp.array([1.0, 2.0]) * eps),
                             rtol=1e-6)
  zf = superinfo.reparameterize(key, mu, fixed_sigma=0.1)
  np.testing.assert_allclose(np.asarray(zf), np.asarray(mu + 0.1 * eps), rtol=1e-6)


def test_distributed_equivalence():
  mu1, mu2, lv1, lv2 = _inputs(16, 4, 70, np.float32)
  fn = lambda m, lv, axis_name=None: superinfo.superinfo_loss(
      m, logvars=lv, coef_superfluous1=0.05, coef_superfluous2=0.02, axis_name=axis_name)[0]
  assert_distributed_equivalence(fn, (np.stack([mu1, mu2]), np.stack([lv1, lv2])),
                                 batch_axes=(1, 1), argnums=(0, 1))
  samples = _rand((2, 16, 6), 71, np.float32)
  fs = lambda m, s, axis_name=None: superinfo.superinfo_loss(
      m, samples=s, coef_superfluous1=0.05, axis_name=axis_name)[0]
  assert_distributed_equivalence(fs, (np.stack([mu1, mu2]), samples), batch_axes=(1, 1),
                                 argnums=(0, 1))


def test_sequence_input_equals_stacked_input_and_aux_scalars():
  mu1, mu2, lv1, lv2 = _inputs(6, 3, 80, np.float32)
  z = _rand((2, 6, 5), 81, np.float32)
  want, aux = superinfo.superinfo_loss(np.stack([mu1, mu2]), logvars=np.stack([lv1, lv2]),
                                       samples=z, coef_superfluous1=0.1)
  for seq in (list, tuple):
    got, got_aux = superinfo.superinfo_loss(seq((mu1, mu2)), logvars=seq((lv1, lv2)),
                                            samples=seq(z), coef_superfluous1=0.1)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    for k in aux:
      np.testing.assert_array_equal(np.asarray(got_aux[k]), np.asarray(aux[k]))
  assert all(jnp.shape(v) == () for v in aux.values())


@pytest.mark.parametrize("bad", [
    np.ones((64, 2, 16), np.float32),          # examples-first [N, V, D]
    np.ones((3, 8, 4), np.float32),            # V = 3
    np.ones((8, 4), np.float32),               # rank 2
    (np.ones((8, 4), np.float32), np.ones((8, 5), np.float32)),   # mismatched views
], ids=["examples_first", "three_views", "rank2", "mismatched"])
def test_bad_layouts_raise(bad):
  good = np.ones((2, 8, 4), np.float32)
  with pytest.raises(ValueError, match="views must be"):
    superinfo.superinfo_loss(bad)
  with pytest.raises(ValueError, match="views must be"):
    superinfo.skl_superfluous_terms(bad)
  with pytest.raises(ValueError, match="logvars must be"):
    superinfo.superinfo_loss(good, logvars=bad)
  with pytest.raises(ValueError, match="samples must be"):
    superinfo.superinfo_loss(good, samples=bad)


def test_value_errors():
  a = jnp.ones((4, 3))
  means = jnp.ones((2, 4, 3))
  with pytest.raises(ValueError, match="same shape"):
    superinfo.gaussian_kl(a, a, jnp.ones((4, 2)), a)
  with pytest.raises(ValueError, match="logvars"):
    superinfo.skl_superfluous_terms(means, logvars=jnp.ones((2, 4, 2)))
  with pytest.raises(ValueError, match="fixed_sigma"):
    superinfo.skl_superfluous_terms(means, fixed_sigma=0.0)
  with pytest.raises(ValueError, match="share V and N"):
    superinfo.superinfo_loss(means, samples=jnp.ones((2, 5, 3)))
