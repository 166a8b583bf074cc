"""Tests for ssljax.pid.kmeans and ssljax.pid.batch.

Independent NumPy references: Lloyd iterations, the class-conditional and
one-hot Gaussian estimators written from their formulas, and the empirical pmf.
Ground truth: analytic Gaussian PIDs (research note §5.3) and population values
of the class-conditional estimator for a known Gaussian mixture. Distributed
equivalence uses ssljax.testing (8 fake CPU devices, the root conftest.py).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.pid import (discrete_batch_pid, empirical_joint_pmf, gaussian_batch_pid,
                        gaussian_pid_from_stats, gaussian_pid_stats, kmeans, kmeans_assign,
                        kmeans_plusplus_init, plugin_mi_bias, view_projection)
from ssljax.testing import assert_distributed_equivalence


# ---------------------------------------------------------------------------
# NumPy references.
# ---------------------------------------------------------------------------

def np_lloyd(x, c, iters):
  for _ in range(iters):
    a = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    c = np.stack([x[a == k].mean(0) if np.any(a == k) else c[k] for k in range(len(c))])
  return c


def np_logdet(m):
  s, ld = np.linalg.slogdet(m)
  assert s > 0
  return ld


def np_standardise(m, ref):
  s = 1.0 / np.sqrt(np.diag(ref))
  return m * s[:, None] * s[None, :]


def np_atoms(i1, i2, i12):
  r = min(i1, i2)
  return np.array([r, i1 - r, i2 - r, i12 - i1 - i2 + r])


def np_class_conditional_pid(u1, u2, t, num_classes, ridge):
  """½[log det Σ_S − Σ_c π_c log det Σ_{c,S}] on standardised covariances (+ridge)."""
  u = np.concatenate([u1, u2], 1)
  d1, d = u1.shape[1], u.shape[1]
  total = np.cov(u.T, bias=True)
  pis, within = [], []
  for c in range(num_classes):
    uc = u[t == c]
    pis.append(len(uc) / len(u))
    within.append(np.cov(uc.T, bias=True) if len(uc) else np.eye(d))

  def mi(ix):
    sub = lambda m: np_standardise(m, total)[np.ix_(ix, ix)] + ridge * np.eye(len(ix))
    return 0.5 * (np_logdet(sub(total)) - sum(p * np_logdet(sub(w)) for p, w in zip(pis, within)
                                              if p > 0))

  return np_atoms(mi(list(range(d1))), mi(list(range(d1, d))), mi(list(range(d))))


def np_onehot_pid(u1, u2, t, num_classes, ridge):
  u = np.concatenate([u1, u2], 1)
  e = np.eye(num_classes)[t][:, :-1]
  full = np.concatenate([u, e], 1)
  cov = np_standardise(np.cov(full.T, bias=True), np.cov(full.T, bias=True))
  d1, d = u1.shape[1], u.shape[1]
  y = list(range(d, full.shape[1]))

  def mi(a):
    sub = lambda ix: cov[np.ix_(ix, ix)] + ridge * np.eye(len(ix))
    return 0.5 * (np_logdet(sub(a)) + np_logdet(sub(y)) - np_logdet(sub(a + y)))

  return np_atoms(mi(list(range(d1))), mi(list(range(d1, d))), mi(list(range(d))))


def np_gaussian_pid(cov, x1, x2, y):
  def mi(a):
    sub = lambda ix: cov[np.ix_(ix, ix)]
    return 0.5 * (np_logdet(sub(a)) + np_logdet(sub(y)) - np_logdet(sub(a + y)))
  return np_atoms(mi(x1), mi(x2), mi(x1 + x2))


def separated_clusters(rng, n, k, d, spread=10.0):
  centers = rng.normal(size=(k, d)) * spread
  labels = np.arange(n) % k
  rng.shuffle(labels)
  return centers[labels] + rng.normal(size=(n, d)), labels


# ---------------------------------------------------------------------------
# k-means.
# ---------------------------------------------------------------------------

def test_kmeans_recovers_well_separated_clusters():
  rng = np.random.default_rng(0)
  x, labels = separated_clusters(rng, 96, 4, 5)
  with jax.enable_x64(True):
    res = jax.jit(lambda x, key: kmeans(x, 4, key=key))(jnp.asarray(x), jax.random.key(0))
    a = np.asarray(res.assignments)
    # A bijection between true clusters and found clusters.
    table = np.zeros((4, 4), int)
    np.add.at(table, (labels, a), 1)
    assert np.all((table > 0).sum(0) == 1) and np.all((table > 0).sum(1) == 1), table
    np.testing.assert_array_equal(a, np.asarray(kmeans_assign(jnp.asarray(x), res.centroids)))
    want_inertia = ((x - np.asarray(res.centroids)[a]) ** 2).sum()
    np.testing.assert_allclose(float(res.inertia), want_inertia, rtol=1e-10)


def test_lloyd_iterations_match_numpy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(60, 3))  # not separated: Lloyd needs several iterations
  c0 = x[:5].copy()
  with jax.enable_x64(True):
    for iters in (1, 4):
      res = kmeans(jnp.asarray(x), 5, key=jax.random.key(0), init=jnp.asarray(c0),
                   max_iters=iters, tol=0.0)
      np.testing.assert_allclose(np.asarray(res.centroids), np_lloyd(x, c0, iters), atol=1e-12)


def test_kmeans_plusplus_picks_distinct_rows():
  rng = np.random.default_rng(2)
  x, labels = separated_clusters(rng, 40, 5, 3, spread=100.0)
  with jax.enable_x64(True):
    init = jax.jit(lambda x, key: kmeans_plusplus_init(x, 5, key=key))
    c = np.asarray(init(jnp.asarray(x), jax.random.key(3)))
    rows = [int(np.argmin(((x - ci) ** 2).sum(1))) for ci in c]
    np.testing.assert_allclose(c, x[rows], atol=0)
    # D² sampling on well-separated data puts one seed in each cluster (a
    # second seed in a cluster has probability ~ within/between spread² ≈ 1e-4).
    assert len(set(labels[rows])) == 5
    np.testing.assert_array_equal(c, np.asarray(init(jnp.asarray(x), jax.random.key(3))))
    # vmap over the PRNG key (a hyper-parameter).
    keys = jax.random.split(jax.random.key(4), 3)
    cs = jax.jit(jax.vmap(lambda k: init(jnp.asarray(x), k)))(keys)
    assert cs.shape == (3, 5, 3)
    np.testing.assert_array_equal(np.asarray(cs[0]), np.asarray(init(jnp.asarray(x), keys[0])))


def test_kmeans_distributed_equivalence():
  rng = np.random.default_rng(3)
  x, _ = separated_clusters(rng, 64, 4, 5)
  with jax.enable_x64(True):
    fn = lambda x, axis_name=None: kmeans(x, 4, key=jax.random.key(5), axis_name=axis_name).inertia
    assert_distributed_equivalence(fn, (jnp.asarray(x),), batch_axes=(0,), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------
# Gaussian batch estimator.
# ---------------------------------------------------------------------------

def test_gaussian_stats_estimators_match_numpy():
  rng = np.random.default_rng(4)
  n, c = 90, 3
  t = np.arange(n) % c
  u1 = rng.normal(size=(n, 2)) + t[:, None]
  u2 = rng.normal(size=(n, 3)) - 0.5 * t[:, None] + 0.3 * u1[:, :1]
  with jax.enable_x64(True):
    stats = gaussian_pid_stats(jnp.asarray(u1), jnp.asarray(u2), jnp.asarray(t), num_classes=c)
    from_stats = jax.jit(gaussian_pid_from_stats, static_argnames=("target",))
    for target, ref in (("class_conditional", np_class_conditional_pid),
                        ("onehot", np_onehot_pid)):
      for ridge in (0.0, 1e-3):
        got = np.array(from_stats(stats, target=target, ridge=ridge))
        np.testing.assert_allclose(got, ref(u1, u2, t, c, ridge), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{target} ridge={ridge}")
    # End to end without projection, and in bits.
    end_to_end = jax.jit(lambda a, b, t, base: gaussian_batch_pid(a, b, t, num_classes=c, dim=None,
                                                                  ridge=1e-3, base=base),
                         static_argnums=3)
    got = np.array(end_to_end(jnp.asarray(u1), jnp.asarray(u2), jnp.asarray(t), 2))
    np.testing.assert_allclose(got, np_class_conditional_pid(u1, u2, t, c, 1e-3) / math.log(2),
                               rtol=1e-9, atol=1e-12)
  # float32: documented tolerance 1e-4 nats.
  got32 = np.array(end_to_end(jnp.asarray(u1, jnp.float32), jnp.asarray(u2, jnp.float32),
                              jnp.asarray(t), math.e))
  np.testing.assert_allclose(got32, np_class_conditional_pid(u1, u2, t, c, 1e-3), atol=1e-4)


def test_gaussian_batch_approaches_analytic_pid():
  """Research note §5.3 'sum' system Y = X1 + X2 + N, embedded in 4-d views
  (signal direction has variance 9, three noise directions variance 1, random
  rotation); PCA to 1 dim recovers the signal, and the error shrinks with N."""
  rng = np.random.default_rng(5)
  want = np.array([0.5 * math.log(1.5), 0, 0, 0.5 * math.log(2)])

  def sample(n):
    x1, x2, noise = rng.normal(size=(3, n))
    y = x1 + x2 + noise
    views = []
    for x in (x1, x2):
      rot, _ = np.linalg.qr(rng.normal(size=(4, 4)))
      views.append(np.concatenate([3 * x[:, None], rng.normal(size=(n, 3))], 1) @ rot)
    return views[0], views[1], y

  errs = {}
  with jax.enable_x64(True):
    est = jax.jit(lambda a, b, y: jnp.stack(gaussian_batch_pid(a, b, y, dim=1, ridge=0.0)))
    for n in (400, 40_000):
      z1, z2, y = sample(n)
      got = np.array(est(jnp.asarray(z1), jnp.asarray(z2), jnp.asarray(y)))
      errs[n] = np.abs(got - want).max()
  assert errs[40_000] < 0.01, errs
  assert errs[40_000] < errs[400], errs


def test_gaussian_batch_class_conditional_population_limit():
  """Gaussian mixture with known π_c, means and covariances: at large N the
  estimator approaches its population value (computed from the parameters)."""
  rng = np.random.default_rng(6)
  pis = np.array([0.5, 0.3, 0.2])
  means = rng.normal(size=(3, 4))
  covs = [np.eye(4) + 0.3 * np.outer(v, v) for v in rng.normal(size=(3, 4))]
  mbar = pis @ means
  total = sum(p * (s + np.outer(m, m)) for p, m, s in zip(pis, means, covs)) - np.outer(mbar, mbar)

  def pop_mi(ix):
    return 0.5 * (np_logdet(total[np.ix_(ix, ix)])
                  - sum(p * np_logdet(s[np.ix_(ix, ix)]) for p, s in zip(pis, covs)))

  want = np_atoms(pop_mi([0, 1]), pop_mi([2, 3]), pop_mi([0, 1, 2, 3]))
  n = 60_000
  t = rng.choice(3, size=n, p=pis)
  u = np.empty((n, 4))
  for c in range(3):
    u[t == c] = rng.multivariate_normal(means[c], covs[c], size=(t == c).sum())
  with jax.enable_x64(True):
    est = jax.jit(lambda a, b, t: jnp.stack(gaussian_batch_pid(a, b, t, num_classes=3, dim=None,
                                                               ridge=0.0)))
    got = np.array(est(jnp.asarray(u[:, :2]), jnp.asarray(u[:, 2:]), jnp.asarray(t)))
  np.testing.assert_allclose(got, want, atol=0.01)


def test_gaussian_batch_properties():
  rng = np.random.default_rng(7)
  n = 64
  t = np.arange(n) % 2
  z1 = rng.normal(size=(n, 6)) + 1.5 * t[:, None] * np.linspace(1, 0, 6)
  z2 = rng.normal(size=(n, 6)) - 1.0 * t[:, None] * np.linspace(0, 1, 6)  # same width: swap reuses the compile
  with jax.enable_x64(True):
    args = jnp.asarray(z1), jnp.asarray(z2), jnp.asarray(t)
    f = jax.jit(lambda z1, z2, t, ridge=1e-3: gaussian_batch_pid(z1, z2, t, num_classes=2, dim=3,
                                                                 ridge=ridge))
    base = np.array(f(*args))
    # Batch-permutation invariance and view swap (U1 ↔ U2).
    perm = rng.permutation(n)
    np.testing.assert_allclose(np.array(f(args[0][perm], args[1][perm], args[2][perm])), base,
                               atol=1e-10)
    np.testing.assert_allclose(np.array(f(args[1], args[0], args[2])), base[[0, 2, 1, 3]],
                               atol=1e-10)
    # Finite gradients; vmap over the ridge.
    g1, g2 = jax.jit(jax.grad(lambda a, b: f(a, b, args[2]).synergy, argnums=(0, 1)))(args[0],
                                                                                      args[1])
    assert np.all(np.isfinite(np.asarray(g1))) and np.all(np.isfinite(np.asarray(g2)))
    ridges = jnp.array([1e-3, 1e-2])
    out = np.array(jax.vmap(lambda r: jnp.stack(f(*args, ridge=r)))(ridges))
    np.testing.assert_allclose(out[0], base, atol=1e-12)
    # Projections: random = orthonormal columns, deterministic in the key; PCA =
    # the top eigenvectors of the batch covariance (NumPy), up to sign.
    proj = lambda **kw: np.asarray(view_projection(args[0], 3, **kw))
    q = proj(method="random", key=jax.random.key(0))
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(q, proj(method="random", key=jax.random.key(0)))
    _, vecs = np.linalg.eigh(np.cov(z1.T, bias=True))
    np.testing.assert_allclose(np.abs(proj().T @ vecs[:, ::-1][:, :3]), np.eye(3), atol=1e-8)


def test_gaussian_batch_distributed_equivalence():
  rng = np.random.default_rng(8)
  n = 64
  t = np.arange(n) % 2
  z1 = rng.normal(size=(n, 5)) * np.arange(1, 6) + t[:, None]
  z2 = rng.normal(size=(n, 4)) * np.arange(1, 5) - t[:, None]
  with jax.enable_x64(True):
    def fn(z1, z2, t, axis_name=None):
      a = gaussian_batch_pid(z1, z2, t, num_classes=2, dim=2, ridge=1e-3, axis_name=axis_name)
      return a.redundancy + 2 * a.unique1 + 3 * a.unique2 + 4 * a.synergy
    assert_distributed_equivalence(fn, (jnp.asarray(z1), jnp.asarray(z2), jnp.asarray(t)),
                                   batch_axes=(0, 0, 0), argnums=(0, 1), rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------
# Discrete batch estimator.
# ---------------------------------------------------------------------------

def test_empirical_joint_pmf_matches_numpy():
  rng = np.random.default_rng(9)
  s1, s2, t = rng.integers(0, 3, 50), rng.integers(0, 2, 50), rng.integers(0, 4, 50)
  want = np.zeros((3, 2, 4))
  np.add.at(want, (s1, s2, t), 1)
  got = empirical_joint_pmf(jnp.asarray(s1), jnp.asarray(s2), jnp.asarray(t), sizes=(3, 2, 4))
  np.testing.assert_allclose(np.asarray(got), want / 50, atol=1e-7)


def xor_views(n_per_cell=16, seed=10):
  """z1 encodes bit a, z2 bit b (two well-separated blobs each), t = a XOR b,
  every (a, b) equally often: the empirical pmf is exactly XOR."""
  rng = np.random.default_rng(seed)
  a = np.repeat([0, 0, 1, 1], n_per_cell)
  b = np.repeat([0, 1, 0, 1], n_per_cell)
  perm = rng.permutation(len(a))
  a, b = a[perm], b[perm]
  z1 = 10.0 * a[:, None] + rng.normal(size=(len(a), 3)) * 0.3
  z2 = 10.0 * b[:, None] - rng.normal(size=(len(a), 2)) * 0.3
  return z1, z2, a ^ b


def test_discrete_batch_pid_recovers_xor_synergy():
  z1, z2, t = xor_views()
  with jax.enable_x64(True):
    run = jax.jit(lambda a, b, t, key: discrete_batch_pid(a, b, t, key=key, num_clusters=2,
                                                          num_classes=2))
    out = run(jnp.asarray(z1), jnp.asarray(z2), jnp.asarray(t), jax.random.key(0))
    np.testing.assert_allclose(np.array(out.atoms), [0, 0, 0, 1], atol=1e-7)
    # XOR up to relabelling of the k-means symbols: four cells of 1/4.
    np.testing.assert_allclose(np.sort(np.asarray(out.pmf).ravel()), [0] * 4 + [.25] * 4, atol=1e-12)
    # I_min and MMI agree on XOR (closed forms, cheap eagerly).
    from ssljax.pid import pid_imin, pid_mmi
    for fn in (pid_imin, pid_mmi):
      np.testing.assert_allclose(np.array(fn(out.pmf)), [0, 0, 0, 1], atol=1e-9)


def test_discrete_batch_distributed_equivalence():
  z1, z2, t = xor_views(n_per_cell=8, seed=11)
  with jax.enable_x64(True):
    def fn(z1, z2, t, axis_name=None):
      # The cross-device parts are k-means and the pmf counts; MMI keeps the
      # PID step cheap to compile (the pmf is replicated, so the measure is moot).
      a = discrete_batch_pid(z1, z2, t, key=jax.random.key(1), num_clusters=2, num_classes=2,
                             measure="mmi", axis_name=axis_name).atoms
      return a.redundancy + 2 * a.unique1 + 3 * a.unique2 + 4 * a.synergy
    # shard_map mode only (the per-shard psum path, the one with collectives
    # written by hand); the jit/Auto-sharding mode is covered by the Gaussian
    # test, and each mode recompiles two k-means loops.
    v, _ = assert_distributed_equivalence(fn, (jnp.asarray(z1), jnp.asarray(z2), jnp.asarray(t)),
                                          batch_axes=(0, 0, 0), argnums=(0,), rtol=1e-9,
                                          atol=1e-9, modes=("shard_map",))
    np.testing.assert_allclose(v, 4.0, atol=1e-9)  # XOR: synergy 1 bit


def test_plugin_bias_formula_and_magnitude():
  np.testing.assert_allclose(plugin_mi_bias(100, 10, 10_000), 99 * 9 / (2e4 * math.log(2)))
  np.testing.assert_allclose(plugin_mi_bias(4, 4, 100, base=math.e), 9 / 200)
  # Empirical check on independent uniform variables (true MI = 0).
  rng = np.random.default_rng(12)
  n, trials, vals = 2000, 300, []
  for _ in range(trials):
    c = np.zeros((4, 4))
    np.add.at(c, (rng.integers(0, 4, n), rng.integers(0, 4, n)), 1)
    p = c / n
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    m = p > 0
    vals.append((p[m] * np.log2(p[m] / (px @ py)[m])).sum())
  np.testing.assert_allclose(np.mean(vals), plugin_mi_bias(4, 4, n), rtol=0.15)


def test_input_validation():
  z = jnp.zeros((8, 3))
  with pytest.raises(ValueError, match="batch size"):
    gaussian_batch_pid(z, jnp.zeros((7, 3)), jnp.zeros(8, jnp.int32), num_classes=2)
  with pytest.raises(ValueError, match="target"):
    gaussian_batch_pid(z, z, jnp.zeros(8, jnp.int32), num_classes=2, target="gaussian")
  with pytest.raises(ValueError, match="integer class labels"):
    gaussian_pid_stats(z, z, jnp.zeros(8), num_classes=2)
  with pytest.raises(ValueError, match="PRNG key"):
    gaussian_batch_pid(z, z, jnp.zeros(8, jnp.int32), num_classes=2, dim=2, projection="random")
  with pytest.raises(ValueError, match="measure"):
    discrete_batch_pid(z, z, jnp.zeros(8, jnp.int32), key=jax.random.key(0), num_clusters=2,
                       num_classes=2, measure="ccs")
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    kmeans(jnp.zeros(8), 2, key=jax.random.key(0))
