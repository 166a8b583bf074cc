"""Tests of ssljax.losses.hsic against float64 NumPy written from the formulas
(Li et al. 2021; official deepmind/ssl_hsic ``kernels.py``).

Float32 tolerance for the HSIC estimators: rtol 1e-4, atol 1e-6. HSIC values
(~1e-2) are differences of O(1) kernel sums over N^2 pairs, so float32 loses
~2-3 of its 7 digits to cancellation; kernels alone are checked at 1e-6.
Monte-Carlo tests use fixed keys (deterministic) and bounds of 5 standard
errors estimated from the same draws.

Layout: the kernels take views first, ``[V, N, D]``. The NumPy references are
written from the paper's notation z_i^v on images-first ``[B, K, D]`` arrays
(``_z``), which are passed to the kernels as ``_v(z) = swapaxes(z, 0, 1)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu
from scipy import special

from ssljax import testing
from ssljax.losses import hsic


# ----------------------------------------------------------------------------
# Independent NumPy references (float64)
# ----------------------------------------------------------------------------


def np_kernel(name, x, y, c):
  d2 = float(np.sum((np.asarray(x) - np.asarray(y))**2))
  if name == "imq":
    return c / np.sqrt(d2 + c * c)
  if name == "gaussian":
    return np.exp(-d2 / (2 * c * c))
  return float(np.dot(x, y))


def np_gram(name, x, y, c):
  return np.array([[np_kernel(name, a, b, c) for b in y] for a in x])


def np_hsic_v(kmat, lmat):
  """HSIC_b = E[k l] - 2 E[k l''] + E[k] E[l] with explicit loops."""
  n = kmat.shape[0]
  t1 = sum(kmat[i, j] * lmat[i, j] for i in range(n) for j in range(n)) / n**2
  t2 = sum(kmat[i, j] * lmat[i, q] for i in range(n) for j in range(n) for q in range(n)) / n**3
  t3 = kmat.sum() * lmat.sum() / n**4
  return t1 - 2 * t2 + t3


def np_label_delta(b):
  h = np.eye(b) - np.ones((b, b)) / b
  m = h @ np.eye(b) @ h
  return m.max() - m.min()


def np_hsic_zy(z, name, c):
  b, k, _ = z.shape
  n = b * k
  same = sum(np_kernel(name, z[i, v], z[i, w], c)
             for i in range(b) for v in range(k) for w in range(k))
  x = z.reshape(n, -1)
  total = sum(np_kernel(name, x[p], x[q], c) for p in range(n) for q in range(n))
  return np_label_delta(b) * (same / (b * k * (k - 1)) - total / n**2)


def np_hsic_zz(z, name, c):
  x = z.reshape(-1, z.shape[-1])
  g = np_gram(name, x, x, c)
  return np_hsic_v(g, g)


def np_rff_zy(phi):
  """Official RFF H_ZY from features [B, K, F] (images first, Delta_l = 1)."""
  b, k, _ = phi.shape
  n = b * k
  same = sum(np.dot(phi[i].sum(0), phi[i].sum(0)) for i in range(b))
  return same / (b * k * (k - 1)) - np.sum(phi.reshape(n, -1).sum(0)**2) / n**2


def np_rff_zz(phi1, phi2):
  """Official RFF H_ZZ from two feature draws [B, K, F]."""
  x1, x2 = phi1.reshape(-1, phi1.shape[-1]), phi2.reshape(-1, phi2.shape[-1])
  cross = sum(np.outer(x1[i] - x1.mean(0), x2[i] - x2.mean(0)) for i in range(len(x1)))
  return np.sum(cross**2) / len(x1)**2


def np_normalize(z):
  return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


def _z(seed, b, k, d, dtype=np.float64):
  """Images-first [B, K, D] test data (the references' layout)."""
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(b, 1, d))
  return (base + 0.5 * rng.normal(size=(b, k, d))).astype(dtype)


def _v(z):
  """Images-first [B, K, ...] -> views-first [K, B, ...], the kernels' layout."""
  return np.swapaxes(np.asarray(z), 0, 1)


_zy_exact = jax.jit(hsic.hsic_zy_exact, static_argnames=("kernel", "axis_name"))
_zz_exact = jax.jit(hsic.hsic_zz_exact, static_argnames=("kernel", "axis_name"))
_loss = jax.jit(hsic.ssl_hsic_loss, static_argnames=(
    "num_rff_features", "estimator", "kernel", "normalize", "imq_spectral", "phase_key_reuse",
    "axis_name"))


# ----------------------------------------------------------------------------
# Kernels and label weights
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["imq", "gaussian", "linear"])
def test_kernels_match_numpy(name):
  fn = jax.jit({"imq": hsic.imq_kernel, "gaussian": hsic.gaussian_kernel,
                "linear": hsic.linear_kernel}[name])
  rng = np.random.default_rng(0)
  for (n, m, d), c in zip([(3, 4, 2), (5, 2, 7), (1, 6, 3)], [0.5, 1.0, 2.5]):
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    ref = np_gram(name, x, y, c)
    with jax.enable_x64(True):
      np.testing.assert_allclose(np.asarray(fn(jnp.asarray(x), jnp.asarray(y), c)), ref,
                                 rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(x, jnp.float32),
                                             jnp.asarray(y, jnp.float32), c)), ref,
                               rtol=1e-5, atol=1e-6)


def test_pairwise_sq_dists_clipped():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)) * 100, jnp.float32)
  d2 = np.asarray(jax.jit(hsic.pairwise_sq_dists)(x, x))
  assert np.all(d2 >= 0.0)  # cancellation on the diagonal is clipped
  np.testing.assert_allclose(np.diag(d2), 0.0, atol=1e-2)
  big = jax.jit(hsic.pairwise_sq_dists)(jnp.full((1, 3), 1e6), jnp.full((1, 3), -1e6))
  assert float(big[0, 0]) == 1e10
  assert float(jax.jit(hsic.imq_kernel)(x[:1], x[:1], 0.7)[0, 0]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("b,k", [(2, 2), (5, 4), (64, 2)])
def test_label_weights_are_max_min_of_centred_label_gram(b, k):
  w_pos, w_neg = hsic.label_weights(b)
  h = np.eye(b) - np.ones((b, b)) / b
  hih = h @ np.eye(b) @ h
  np.testing.assert_allclose([w_pos, w_neg], [hih.max(), hih.min()], rtol=1e-12, atol=1e-15)
  # Same values for the pooled N x N label Gram I_B (x) 11^T centred with H_N.
  n = b * k
  lab = np.kron(np.eye(b), np.ones((k, k)))
  hn = np.eye(n) - np.ones((n, n)) / n
  c = hn @ lab @ hn
  np.testing.assert_allclose([w_pos, w_neg], [c.max(), c.min()], rtol=1e-12, atol=1e-14)
  assert w_pos - w_neg == pytest.approx(1.0, abs=1e-15)


# ----------------------------------------------------------------------------
# Exact estimators
# ----------------------------------------------------------------------------


def test_hsic_biased_matches_numpy_and_analytic():
  rng = np.random.default_rng(2)
  biased = jax.jit(hsic.hsic_biased)
  for n in (3, 7):
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 3))
    kx, ky = np_gram("imq", x, x, 1.0), np_gram("gaussian", y, y, 0.8)
    with jax.enable_x64(True):
      got = float(biased(jnp.asarray(kx), jnp.asarray(ky)))
    np.testing.assert_allclose(got, np_hsic_v(kx, ky), rtol=1e-12)
    # A constant kernel carries no dependence.
    assert abs(float(biased(jnp.asarray(kx, jnp.float32), jnp.ones((n, n))))) < 1e-6
  # Linear kernels: HSIC(X, X) = ||Cov(X)||_F^2 (biased covariance).
  x = rng.normal(size=(9, 3))
  cov = np.cov(x.T, bias=True)
  with jax.enable_x64(True):
    got = float(biased(jnp.asarray(x @ x.T), jnp.asarray(x @ x.T)))
  np.testing.assert_allclose(got, np.sum(cov**2), rtol=1e-12)


@pytest.mark.parametrize("name", ["imq", "gaussian", "linear"])
def test_exact_estimators_match_numpy(name):
  for (b, k, d), c in zip([(3, 2, 4), (4, 4, 3)], [1.0, 0.6]):
    z = _z(b * 10 + k, b, k, d)
    ref_zy, ref_zz = np_hsic_zy(z, name, c), np_hsic_zz(z, name, c)
    with jax.enable_x64(True):
      zy = float(_zy_exact(jnp.asarray(_v(z)), kernel=name, scale=c))
      zz = float(_zz_exact(jnp.asarray(_v(z)), kernel=name, scale=c))
    np.testing.assert_allclose(zy, ref_zy, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(zz, ref_zz, rtol=1e-10, atol=1e-14)
    z32 = jnp.asarray(_v(z), jnp.float32)
    np.testing.assert_allclose(float(_zy_exact(z32, kernel=name, scale=c)), ref_zy, rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(float(_zz_exact(z32, kernel=name, scale=c)), ref_zz, rtol=1e-4,
                               atol=1e-6)


def test_hsic_zz_exact_equals_hsic_biased_of_pooled_gram():
  z = _z(3, 5, 2, 3)
  x = z.reshape(-1, 3)
  with jax.enable_x64(True):
    zz, ref = jax.jit(lambda z, x: (hsic.hsic_zz_exact(z, scale=1.3), hsic.hsic_biased(
        hsic.imq_kernel(x, x, 1.3), hsic.imq_kernel(x, x, 1.3))))(jnp.asarray(_v(z)),
                                                                  jnp.asarray(x))
    np.testing.assert_allclose(float(zz), float(ref), rtol=1e-12)


# ----------------------------------------------------------------------------
# IMQ spectral law and RFF
# ----------------------------------------------------------------------------


def _log_bessel_k_integral(v, x):
  """log K_v(x) = log int_0^inf exp(-x cosh t) cosh(v t) dt (trapezoid, log space)."""
  t = np.linspace(0.0, 80.0, 400001)
  f = -x * np.cosh(t) + np.logaddexp(v * t, -v * t) - np.log(2.0)
  w = np.ones_like(t)
  w[[0, -1]] = 0.5
  m = f.max()
  return m + np.log(np.sum(w * np.exp(f - m)) * (t[1] - t[0]))


def test_imq_amplitude_grid():
  # Numbers measured from the official (mpmath) grid, research notes §1.2.
  a, p = hsic.imq_rff_amplitude_grid(32)
  assert a.shape == p.shape == (10000,) and a[0] == 1e-12 and a[-1] == 100.0
  np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
  np.testing.assert_allclose([(a * p).sum(), np.sqrt((a * a * p).sum())], [4.4752, 5.655],
                             atol=6e-4)
  a, p = hsic.imq_rff_amplitude_grid(256)
  np.testing.assert_allclose([(a * p).sum(), np.sqrt((a * a * p).sum())], [12.7505, 15.998],
                             atol=6e-4)
  assert np.all(np.diff(p) <= 0)  # decreasing from a = 0
  # Analytic ground truth of the continuous law a = |n| chi_d: E[a^2] = d,
  # E[a] = sqrt(2/pi) sqrt(2) Gamma((d+1)/2) / Gamma(d/2) (grid step 0.01 -> ~1e-3 rel).
  for d in (8, 64, 256):
    a, p = hsic.imq_rff_amplitude_grid(d)
    mean = np.sqrt(4 / np.pi) * np.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    np.testing.assert_allclose((a * p).sum(), mean, rtol=2e-3)
    np.testing.assert_allclose((a * a * p).sum(), d, rtol=2e-3)
  # Large d (K_v overflows, recurrence path): log-probability ratios vs the
  # integral representation of K_v.
  d = 2049
  a, p = hsic.imq_rff_amplitude_grid(d)
  assert np.all(np.isfinite(p)) and p[0] > 0
  nu = (d - 1) / 2
  idx = [0, 1, 500, 3000, 9999]
  ref = [nu * np.log(a[i]) + _log_bessel_k_integral(nu, a[i]) for i in idx]
  np.testing.assert_allclose(np.log(p[idx]) - np.log(p[0]), np.array(ref) - ref[0],
                             rtol=1e-9, atol=1e-8)


def _official_draws(key, d, f, amps, probs):
  """The official key structure: kA, kB = split(key); amplitudes from kA,
  directions normal(kB), phases uniform(kB) (reuse) or uniform(fold_in(kB, 1))."""
  k_amp, k_dir = jax.random.split(key)
  return dict(g=jax.random.normal(k_dir, (f, d), jnp.float64),
              n=jax.random.normal(k_amp, (f, 1), jnp.float64),
              amp=jax.random.choice(k_amp, amps, shape=(f, 1), p=probs),
              b_reuse=jax.random.uniform(k_dir, (1, f), jnp.float64),
              b_fold=jax.random.uniform(jax.random.fold_in(k_dir, 1), (1, f), jnp.float64))


def _np_rff(draws, x, c, *, grid, reuse):
  """phi(x) = sqrt(2/F) cos(W x / c + b) in NumPy from the drawn numbers."""
  g = draws["g"]
  if grid:
    w = g / np.linalg.norm(g, axis=1, keepdims=True) * draws["amp"]
  else:
    w = np.abs(draws["n"]) * g
  b = (draws["b_reuse"] if reuse else draws["b_fold"]) * 2 * np.pi
  return np.sqrt(2.0 / g.shape[0]) * np.cos(x / c @ w.T + b)


def test_imq_rff_features_follow_official_draw_structure():
  x = np.random.default_rng(3).normal(size=(5, 6))
  key = jax.random.key(7)
  with jax.enable_x64(True):
    amps, probs = hsic.imq_rff_amplitude_grid(6)

    @jax.jit
    def run(x):
      feats = {(grid, reuse): hsic.imq_rff_features(
          x, key=key, scale=0.7, num_features=16, amplitudes=amps if grid else None,
          probs=probs if grid else None, phase_key_reuse=reuse)
               for grid, reuse in ((True, True), (True, False), (False, False))}
      return feats, _official_draws(key, 6, 16, amps, probs)

    feats, draws = jax.tree.map(np.asarray, run(jnp.asarray(x)))
    for (grid, reuse), got in feats.items():
      ref = _np_rff(draws, x, 0.7, grid=grid, reuse=reuse)
      np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,spectral,d", [
    ("imq", "grid", 16), ("imq", "exact", 1), ("gaussian", "grid", 8)])
def test_rff_kernel_values_within_monte_carlo_error(kernel, spectral, d):
  f = 40000
  rng = np.random.default_rng(d)
  x = jnp.asarray(rng.uniform(size=(4, d)), jnp.float32)
  y = jnp.asarray(rng.uniform(size=(4, d)), jnp.float32)
  kfn = hsic.imq_kernel if kernel == "imq" else hsic.gaussian_kernel

  @jax.jit
  def run(key, c):
    kw = dict(kernel=kernel, scale=c, num_features=f, imq_spectral=spectral)
    terms = f * hsic.rff_features(x, key=key, **kw) * hsic.rff_features(y, key=key, **kw)
    # per-feature estimates of k(x, y): mean and standard error
    return terms.mean(1), terms.std(1) / np.sqrt(f), jnp.diagonal(kfn(x, y, c))

  for c in (0.5, 2.0):
    est, se, exact = (np.asarray(v) for v in run(jax.random.key(d * 10 + int(c * 10)), c))
    assert np.all(np.abs(est - exact) < 5 * se + 2e-4), (est, exact, se)


def test_rff_hsic_converges_to_exact_at_monte_carlo_rate():
  z = jnp.asarray(np_normalize(_v(_z(4, 8, 2, 4))), jnp.float32)
  exact_zy = float(_zy_exact(z, scale=1.0))
  exact_zz = float(_zz_exact(z, scale=1.0))
  keys = jax.random.split(jax.random.key(0), 24)
  feats = (8, 32, 128, 512)

  @jax.jit
  def estimates(keys):
    def one(k):
      k1, k2 = jax.random.split(k)
      # The first f of F iid features, rescaled by sqrt(F/f), are an F = f draw:
      # one draw per key serves every f (one compile).
      kw = dict(num_features=feats[-1], imq_spectral="exact")
      phi1 = hsic.rff_features(z, key=k1, **kw)
      phi2 = hsic.rff_features(z, key=k2, **kw)
      out = []
      for f in feats:
        a = phi1[..., :f] * jnp.sqrt(feats[-1] / f)
        b = phi2[..., :f] * jnp.sqrt(feats[-1] / f)
        out.append((hsic.hsic_zy_from_features(a), hsic.hsic_zz_from_features(b, a)))
      return out
    return jax.vmap(one)(keys)

  rmse_zy, rmse_zz = [], []
  for f, (zy, zz) in zip(feats, estimates(keys)):
    zy, zz = np.asarray(zy, np.float64), np.asarray(zz, np.float64)
    rmse_zy.append(np.sqrt(np.mean((zy - exact_zy)**2)))
    rmse_zz.append(np.sqrt(np.mean((zz - exact_zz)**2)))
    if f == feats[-1]:  # unbiased: the mean over keys is within Monte-Carlo error
      assert abs(zy.mean() - exact_zy) < 5 * zy.std() / np.sqrt(len(keys))
      assert abs(zz.mean() - exact_zz) < 5 * zz.std() / np.sqrt(len(keys))
  for rmse in (rmse_zy, rmse_zz):
    slope = np.polyfit(np.log(feats), np.log(rmse), 1)[0]
    assert -0.7 < slope < -0.3, (slope, rmse)


# ----------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 4])
def test_ssl_hsic_loss_exact_matches_numpy(k):
  z = _z(5 + k, 4, k, 3)
  zn = np_normalize(z)
  ref_zy, ref_zz = np_hsic_zy(zn, "imq", 0.9), np_hsic_zz(zn, "imq", 0.9)
  with jax.enable_x64(True):
    loss, aux = _loss(jnp.asarray(_v(z)), estimator="exact", scale=0.9, gamma=3.0)
  np.testing.assert_allclose(float(aux["hsic_zy"]), ref_zy, rtol=1e-10)
  np.testing.assert_allclose(float(aux["hsic_zz"]), ref_zz, rtol=1e-10)
  np.testing.assert_allclose(float(loss), 3.0 * np.sqrt(ref_zz) - ref_zy, rtol=1e-10)


def test_ssl_hsic_loss_rff_official_structure():
  """phi2 of H_ZZ is the H_ZY draw: (kA, kB) = split(key); H_ZZ uses (kB, kA)."""
  z = jnp.asarray(_v(_z(6, 8, 4, 5)), jnp.float32)  # [V=4, N=8, D=5]
  key = jax.random.key(3)

  @jax.jit
  def both(z, key):
    loss, aux = hsic.ssl_hsic_loss(z, key=key, num_rff_features=32)
    loss_list, _ = hsic.ssl_hsic_loss([z[v] for v in range(4)], key=key, num_rff_features=32)
    k_a, k_b = jax.random.split(key)
    zn = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    phi_a = hsic.rff_features(zn, key=k_a, num_features=32)
    phi_b = hsic.rff_features(zn, key=k_b, num_features=32)
    zy = hsic.hsic_zy_from_features(phi_a)
    zz = hsic.hsic_zz_from_features(phi_b, phi_a)
    # The bare RFF estimators split one key the same way.
    zy_bare = hsic.hsic_zy_rff(zn, key=key, num_features=32)
    zz_bare = hsic.hsic_zz_rff(zn, key=key, num_features=32)
    return loss, aux, loss_list, zy, zz, zy_bare, zz_bare

  loss, aux, loss_list, zy, zz, zy_bare, zz_bare = both(z, key)
  np.testing.assert_allclose(float(aux["hsic_zy"]), float(zy), rtol=1e-5)
  np.testing.assert_allclose(float(aux["hsic_zz"]), float(zz), rtol=1e-5)
  np.testing.assert_allclose(float(loss), 3.0 * np.sqrt(float(zz)) - float(zy), rtol=1e-5)
  np.testing.assert_allclose([float(zy_bare), float(zz_bare)], [float(zy), float(zz)], rtol=1e-6)
  # The list-of-views layout (official 4 views) is the same computation.
  np.testing.assert_allclose(float(loss_list), float(loss), rtol=1e-6)


def test_rff_estimators_match_numpy_from_features():
  rng = np.random.default_rng(8)
  phi1, phi2 = rng.normal(size=(2, 8, 3, 6))  # images first [B=8, K=3, F=6]
  k = phi1.shape[1]
  ref_zy, ref_zz = np_rff_zy(phi2), np_rff_zz(phi1, phi2)
  with jax.enable_x64(True):
    @jax.jit
    def run(p1, p2):
      # Additive statistics over two chunks of images give the same loss.
      parts = [hsic.ssl_hsic_rff_stats(p2[:, s], p1[:, s]) for s in (slice(0, 3), slice(3, 8))]
      stats = jax.tree.map(lambda a, c: a + c, *parts)
      return (hsic.hsic_zy_from_features(p2), hsic.hsic_zz_from_features(p1, p2),
              hsic.ssl_hsic_rff_from_stats(stats, num_views=k, gamma=2.0))

    zy, zz, (loss, aux) = run(jnp.asarray(_v(phi1)), jnp.asarray(_v(phi2)))
    np.testing.assert_allclose(float(zy), ref_zy, rtol=1e-12)
    np.testing.assert_allclose(float(zz), ref_zz, rtol=1e-12)
    np.testing.assert_allclose(float(aux["hsic_zy"]), ref_zy, rtol=1e-12)
    np.testing.assert_allclose(float(aux["hsic_zz"]), ref_zz, rtol=1e-10)
    np.testing.assert_allclose(float(loss), 2.0 * np.sqrt(ref_zz) - ref_zy, rtol=1e-10)
  # A linear kernel has an exact feature map: the "RFF" path equals the exact one.
  z = jnp.asarray(_v(_z(9, 6, 3, 4)), jnp.float32)
  kw = dict(kernel="linear", normalize=False)
  lin = jax.jit(lambda z: (hsic.ssl_hsic_loss(z, key=jax.random.key(0), **kw)[0],
                           hsic.ssl_hsic_loss(z, estimator="exact", **kw)[0]))(z)
  np.testing.assert_allclose(float(lin[0]), float(lin[1]), rtol=1e-4)


def test_views_first_trap():
  """``jnp.stack([z1, z2])`` is V = 2 views of N images, not N views of 2 images.

  The old images-first API read this array as B = 2 images of K = N views
  (here: 0.328 instead of the correct -0.881). The references below are the
  images-first formulas on ``stack([z1, z2], axis=1)`` (the correct number)."""
  rng = np.random.default_rng(20)
  z1 = rng.normal(size=(16, 5))
  z2 = z1 + 0.5 * rng.normal(size=(16, 5))
  old_layout = np_normalize(np.stack([z1, z2], axis=1))  # [B=16, K=2, D]
  ref_zy, ref_zz = np_hsic_zy(old_layout, "imq", 1.0), np_hsic_zz(old_layout, "imq", 1.0)
  ref = 3.0 * np.sqrt(ref_zz) - ref_zy
  misread = np_normalize(np.stack([z1, z2]))  # [2, 16, D] read as B=2, K=16
  wrong = 3.0 * np.sqrt(np_hsic_zz(misread, "imq", 1.0)) - np_hsic_zy(misread, "imq", 1.0)
  assert abs(wrong - ref) > 0.1  # the two readings really differ
  key = jax.random.key(4)
  with jax.enable_x64(True):
    @jax.jit
    def run(z1, z2):
      views = jnp.stack([z1, z2])
      exact = hsic.ssl_hsic_loss(views, estimator="exact")[0]
      rff, aux = hsic.ssl_hsic_loss(views, key=key, num_rff_features=16)
      k_a, k_b = jax.random.split(key)
      zn = views / jnp.linalg.norm(views, axis=-1, keepdims=True)
      phis = [hsic.rff_features(zn, key=k, num_features=16) for k in (k_a, k_b)]
      return exact, rff, aux, phis

    exact, rff, aux, (phi_a, phi_b) = run(jnp.asarray(z1), jnp.asarray(z2))
  np.testing.assert_allclose(float(exact), ref, rtol=1e-10)
  # RFF path: the images-first formulas on the same features.
  phi_a, phi_b = _v(phi_a), _v(phi_b)  # [N, V, F]
  ref_rff_zy, ref_rff_zz = np_rff_zy(phi_a), np_rff_zz(phi_b, phi_a)
  np.testing.assert_allclose([float(aux["hsic_zy"]), float(aux["hsic_zz"])],
                             [ref_rff_zy, ref_rff_zz], rtol=1e-10)
  np.testing.assert_allclose(float(rff), 3.0 * np.sqrt(ref_rff_zz) - ref_rff_zy, rtol=1e-10)
  # The examples-first array [N, 2, D] is rejected by every entry point.
  examples_first = jnp.stack([jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32)], 1)
  for call in (lambda x: hsic.ssl_hsic_loss(x, key=key),
               lambda x: hsic.ssl_hsic_loss(x, estimator="exact"),
               hsic.hsic_zy_exact, hsic.hsic_zz_exact,
               lambda x: hsic.hsic_zy_rff(x, key=key), lambda x: hsic.hsic_zz_rff(x, key=key),
               lambda x: hsic.kernel_scale_objective(x, key=key, scale=1.0),
               hsic.hsic_zy_from_features, lambda x: hsic.hsic_zz_from_features(x, x),
               lambda x: hsic.ssl_hsic_rff_stats(x, x)):
    with pytest.raises(ValueError, match="views first"):
      call(examples_first)


def test_sequence_input_equals_stacked_and_aux_scalars():
  z = jnp.asarray(_v(_z(14, 8, 3, 4)), jnp.float32)  # [V=3, N=8, D=4]
  key = jax.random.key(6)
  fns = {
      "rff": lambda x: hsic.ssl_hsic_loss(x, key=key, num_rff_features=16),
      "exact": lambda x: hsic.ssl_hsic_loss(x, estimator="exact"),
      "zy_exact": hsic.hsic_zy_exact, "zz_exact": hsic.hsic_zz_exact,
      "zy_rff": lambda x: hsic.hsic_zy_rff(x, key=key, num_features=16),
      "zz_rff": lambda x: hsic.hsic_zz_rff(x, key=key, num_features=16),
      "scale": lambda x: hsic.kernel_scale_objective(x, key=key, scale=0.8, num_samples=24),
  }

  @jax.jit
  def run(z):
    return ({k: f(z) for k, f in fns.items()}, {k: f(tuple(z)) for k, f in fns.items()},
            {k: f([z[v] for v in range(3)]) for k, f in fns.items()})

  stacked, as_tuple, as_list = run(z)
  for other in (as_tuple, as_list):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 stacked, other)
  for est in ("rff", "exact"):
    loss, aux = stacked[est]
    assert loss.shape == () and sorted(aux) == ["hsic_zy", "hsic_zz", "scale"]
    assert all(v.shape == () for v in aux.values())


def test_properties():
  z = jnp.asarray(_v(_z(10, 8, 4, 6)), jnp.float32)  # [V=4, N=8, D=6]
  key = jax.random.key(1)
  perm = np.random.default_rng(0).permutation(8)

  def f(x, c, gamma, estimator):
    return hsic.ssl_hsic_loss(x, key=key, estimator=estimator, num_rff_features=64, scale=c,
                              gamma=gamma)[0]

  @jax.jit
  def run(z):
    out = {}
    for est in ("rff", "exact"):
      # One vmapped evaluation: (z), view-reversed, image-permuted (same key =
      # same draw), gamma = 1, scale = 0.5.
      xs = jnp.stack([z, z[::-1], z[:, perm], z, z])
      cs = jnp.array([1.0, 1.0, 1.0, 1.0, 0.5])
      gs = jnp.array([3.0, 3.0, 3.0, 1.0, 3.0])
      vals = jax.vmap(lambda x, c, g: f(x, c, g, est))(xs, cs, gs)
      grads = jax.grad(f, argnums=(0, 1, 2))(z, 1.0, 3.0, est)
      out[est] = (vals, grads, f(z, 1.0, 1.0, est))
    return out

  for est, (vals, (gz, gc, gg), val_g1) in run(z).items():
    vals = np.asarray(vals)
    np.testing.assert_allclose(vals[1:3], vals[0], rtol=1e-5, err_msg=est)  # symmetries
    np.testing.assert_allclose(vals[3], float(val_g1), rtol=1e-5, err_msg=est)  # vmap(gamma)
    assert abs(vals[4] - vals[0]) > 1e-4  # vmap(scale): the bandwidth matters
    assert float(gc) == 0.0, est  # scale is stop-gradiented inside the loss
    assert np.all(np.isfinite(np.asarray(gz))) and np.any(np.asarray(gz) != 0)
    assert float(gg) > 0  # d L / d gamma = sqrt(H_ZZ)


def test_check_grads_exact_float64_and_collapse():
  with jax.enable_x64(True):
    z = jnp.asarray(_v(_z(11, 2, 2, 2)))
    jtu.check_grads(jax.jit(lambda x: hsic.ssl_hsic_loss(x, estimator="exact")[0]), (z,),
                    order=1, modes=("rev",))
  # Collapsed batch: H_ZZ = 0, the sqrt's subgradient 0 keeps the gradient finite.
  z = jnp.ones((2, 4, 3), jnp.float32)

  def both(x):  # NaN in either estimator's gradient would make the sum's NaN
    return sum(hsic.ssl_hsic_loss(x, key=jax.random.key(0), estimator=est, num_rff_features=16,
                                  imq_spectral="exact")[0] for est in ("exact", "rff"))

  val, g = jax.jit(jax.value_and_grad(both))(z)
  assert np.isfinite(float(val)) and np.all(np.isfinite(np.asarray(g)))


def test_input_errors():
  z = jnp.ones((2, 4, 3))
  key = jax.random.key(0)
  with pytest.raises(ValueError, match=r"V>=2"):  # one view
    hsic.ssl_hsic_loss(jnp.ones((1, 4, 3)), key=key)
  with pytest.raises(ValueError, match=r"V>=2"):  # wrong rank
    hsic.ssl_hsic_loss(jnp.ones((4, 3)), key=key)
  with pytest.raises(ValueError, match="sequence of shapes"):  # mismatched views
    hsic.ssl_hsic_loss((jnp.ones((4, 3)), jnp.ones((5, 3))), key=key)
  with pytest.raises(ValueError, match="share V and N"):
    hsic.hsic_zz_from_features(jnp.ones((2, 4, 3)), jnp.ones((2, 5, 3)))
  with pytest.raises(ValueError, match="estimator"):
    hsic.ssl_hsic_loss(z, key=key, estimator="nystrom")
  for call in (lambda: hsic.ssl_hsic_loss(z), lambda: hsic.hsic_zy_rff(z, key=None)):
    with pytest.raises(ValueError, match="needs key="):
      call()
  with pytest.raises(ValueError, match="unknown kernel"):
    hsic.hsic_zz_exact(z, kernel="laplace")
  with pytest.raises(ValueError, match="both"):
    hsic.imq_rff_features(z, key=key, amplitudes=jnp.ones(3))
  with pytest.raises(ValueError, match="distance kernel"):
    hsic.kernel_scale_objective(z, key=key, scale=1.0, kernel="linear")


# ----------------------------------------------------------------------------
# Bandwidth objective
# ----------------------------------------------------------------------------


def test_large_batch_normalisers_do_not_overflow():
  """M = V N >= 46341 makes M^2 overflow int32 (regression: N = 16384, V = 4)."""
  b, k = 23200, 2
  phi = np.random.default_rng(15).normal(size=(b, k, 1)).astype(np.float32)
  zy, zz = jax.jit(lambda p: (hsic.hsic_zy_from_features(p), hsic.hsic_zz_from_features(p, p)))(
      jnp.asarray(_v(phi)))
  x = phi.reshape(-1).astype(np.float64)
  n = b * k
  ref_zy = np.sum(phi.sum(1).astype(np.float64)**2) / (b * k * (k - 1)) - x.sum()**2 / n**2
  np.testing.assert_allclose(float(zy), ref_zy, rtol=1e-3)
  np.testing.assert_allclose(float(zz), np.var(x)**2, rtol=1e-3)


@pytest.mark.parametrize("x64", [True, False])
def test_kernel_scale_objective_matches_formula(x64):
  z = _z(12, 6, 2, 3)
  key = jax.random.key(5)
  c = 0.8
  with jax.enable_x64(x64):
    @jax.jit
    def run(views):
      # Same index draws (official: one key per view and sample matrix).
      keys = jax.random.split(key, 4)
      idx = [jax.random.choice(keys[i], 6, (32,)) for i in range(4)]
      return hsic.kernel_scale_objective(views, key=key, scale=c, num_samples=64), idx

    got, idx = run(jnp.asarray(_v(z), jnp.float64 if x64 else jnp.float32))
    got = float(got)
  zn = np_normalize(z)
  s = [np.concatenate([zn[np.asarray(idx[2 * j + v]), v] for v in range(2)]) for j in range(2)]
  d2 = ((s[0][:, None, :] - s[1][None, :, :])**2).sum(-1)
  g = -(c / 2) * (d2 + c * c)**-1.5
  ref = -np.mean(0.5 * np.log(np.maximum(1e-14, g**2)))
  np.testing.assert_allclose(got, ref, rtol=1e-10 if x64 else 1e-5)


def test_kernel_scale_objective_analytic_value_and_gradient():
  """Two identical images with orthogonal unit views: half the sampled pairs
  have D2 = 0 (same view), half D2 = 2."""
  views = jnp.asarray([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # [V=2, N=2, 2]

  def ref(c):
    return -0.5 * ((np.log(c / 2) - 3 * np.log(c)) + (np.log(c / 2) - 1.5 * np.log(2 + c * c)))

  def dref(c):
    return -0.5 * ((1 / c - 3 / c) + (1 / c - 3 * c / (2 + c * c)))

  def objective(x, c):
    return hsic.kernel_scale_objective(x, key=jax.random.key(0), scale=c)

  f = jax.jit(jax.value_and_grad(objective, argnums=1))
  for c in (0.5, 1.0, 2.0):
    val, grad = f(views, c)
    np.testing.assert_allclose([float(val), float(grad)], [ref(c), dref(c)], rtol=1e-5)
  # The views get no gradient (stop-gradient on the samples).
  gz = jax.jit(jax.grad(objective))(views, 1.0)
  np.testing.assert_array_equal(np.asarray(gz), 0.0)


# ----------------------------------------------------------------------------
# Distributed equivalence
# ----------------------------------------------------------------------------


def test_distributed_equivalence():
  """Exact path (all-gather), RFF path (same key on every device, F-vector and
  F x F psums) and the bandwidth objective (masked psum of the samples), summed
  with distinct weights so that one 3-way comparison covers all of them.
  Views [V=4, N=16, D=5] are sharded along N (axis 1): 2 images per device."""
  z = jnp.asarray(_v(_z(13, 16, 4, 5)), jnp.float32)

  def fn(z, key, scale, *, axis_name=None):
    exact = hsic.ssl_hsic_loss(z, estimator="exact", axis_name=axis_name)[0]
    rff = hsic.ssl_hsic_loss(z, key=key, num_rff_features=16, imq_spectral="exact",
                             axis_name=axis_name)[0]
    obj = hsic.kernel_scale_objective(z, key=key, scale=scale, num_samples=64,
                                      axis_name=axis_name)
    return exact + 10.0 * rff + 0.1 * obj

  _, (gz, gc) = testing.assert_distributed_equivalence(
      fn, (z, jax.random.key(2), jnp.float32(0.9)), batch_axes=(1, None, None),
      argnums=(0, 2))
  assert np.any(gz != 0) and gc != 0


def test_distributed_rff_stats_match_global():
  """``ssl_hsic_rff_stats(..., axis_name)`` psums the per-shard statistics."""
  phi = jnp.asarray(np.random.default_rng(16).normal(size=(2, 3, 16, 4)), jnp.float32)

  def fn(phi, *, axis_name=None):
    stats = hsic.ssl_hsic_rff_stats(phi[0], phi[1], axis_name=axis_name)
    return hsic.ssl_hsic_rff_from_stats(stats, num_views=3)[0]

  testing.assert_distributed_equivalence(fn, (phi,), batch_axes=(2,), argnums=0)
