"""Tests for ssljax.pid.gaussian (nats unless stated).

References: an independent NumPy implementation from the formulas
(``I(A;B) = ½[log det Σ_AA + log det Σ_BB − log det Σ_{A∪B}]`` with
``numpy.linalg.slogdet``), and the analytic Gaussian systems of the research
note ../shared/research/pid_superinfo_vicreg.md §5.3.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.pid import gaussian_entropy, gaussian_mi, gaussian_pid_mmi, logdet_psd


def np_logdet(m, ridge=0.0):
  sign, ld = np.linalg.slogdet(m + ridge * np.eye(len(m)))
  assert sign > 0
  return ld


def np_mi(cov, a, b, ridge=0.0):
  a, b = list(a), list(b)
  sub = lambda ix: cov[np.ix_(ix, ix)]
  return 0.5 * (np_logdet(sub(a), ridge) + np_logdet(sub(b), ridge) - np_logdet(sub(a + b), ridge))


def np_mmi(cov, x1, x2, y, ridge=0.0):
  i1, i2, i12 = np_mi(cov, x1, y, ridge), np_mi(cov, x2, y, ridge), np_mi(cov, x1 + x2, y, ridge)
  r = min(i1, i2)
  return np.array([r, i1 - r, i2 - r, i12 - i1 - i2 + r])


def random_cov(rng, d, n_extra=3):
  a = rng.normal(size=(d, d + n_extra))
  return a @ a.T / (d + n_extra)


# Research note §5.3: X1, X2, N i.i.d. N(0,1); covariances of (X1, X2, Y).
SYSTEMS = {
    # Y = X1 + X2 + N
    "sum": (np.array([[1., 0, 1], [0, 1, 1], [1, 1, 3]]),
            [0.5 * math.log(1.5), 0, 0, 0.5 * math.log(2)]),
    # Y ~ N(0,1), X_i = Y + N_i
    "redundant": (np.array([[2., 1, 1], [1, 2, 1], [1, 1, 1]]),
                  [0.5 * math.log(2), 0, 0, 0.5 * math.log(3) - 0.5 * math.log(2)]),
    # Y = X1 + N, X2 independent
    "unique": (np.array([[1., 0, 1], [0, 1, 0], [1, 0, 2]]), [0, 0.5 * math.log(2), 0, 0]),
}


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_analytic_gaussian_systems(name):
  cov, want = SYSTEMS[name]
  with jax.enable_x64(True):
    got = gaussian_pid_mmi(jnp.asarray(cov), [0], [1], [2])
    np.testing.assert_allclose(np.array(got), want, atol=1e-12)
    # The note's rounded table (4 decimals).
    table = {"sum": [.2027, 0, 0, .3466], "redundant": [.3466, 0, 0, .2027],
             "unique": [0, .3466, 0, 0]}[name]
    np.testing.assert_allclose(np.array(got), table, atol=6e-5)
    np.testing.assert_allclose(np.array(gaussian_pid_mmi(jnp.asarray(cov), [0], [1], [2], base=2)),
                               np.array(want) / math.log(2), atol=1e-12)


def test_mi_and_entropy_against_numpy():
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    for d, a, b in [(2, [0], [1]), (5, [0, 2], [1, 3, 4]), (7, [6, 1, 0], [2, 5])]:
      cov = random_cov(rng, d)
      for ridge in (0.0, 0.1):
        got = float(gaussian_mi(jnp.asarray(cov), a, b, ridge=ridge))
        np.testing.assert_allclose(got, np_mi(cov, a, b, ridge), rtol=1e-9)
      np.testing.assert_allclose(float(logdet_psd(jnp.asarray(cov))), np_logdet(cov), rtol=1e-10)
      want_h = 0.5 * (d * math.log(2 * math.pi * math.e) + np_logdet(cov))
      np.testing.assert_allclose(float(gaussian_entropy(jnp.asarray(cov))), want_h, rtol=1e-10)
      np.testing.assert_allclose(float(gaussian_entropy(jnp.asarray(cov), base=2)),
                                 want_h / math.log(2), rtol=1e-10)
  # float32: documented tolerance 1e-4 relative (Cholesky of a well-conditioned 7×7).
  cov = random_cov(rng, 7)
  got = float(gaussian_mi(jnp.asarray(cov, jnp.float32), [0, 1, 2], [3, 4]))
  np.testing.assert_allclose(got, np_mi(cov, [0, 1, 2], [3, 4]), rtol=1e-4)


def test_mmi_vector_blocks_against_numpy():
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    cov = random_cov(rng, 7)
    for x1, x2, y in [([0, 1], [2, 3], [4]), ([0], [1, 2, 3], [4, 5, 6])]:
      got = np.array(gaussian_pid_mmi(jnp.asarray(cov), x1, x2, y, ridge=1e-3))
      np.testing.assert_allclose(got, np_mmi(cov, x1, x2, y, 1e-3), rtol=1e-9, atol=1e-12)
      # Bookkeeping identities hold exactly.
      i1, i2, i12 = (np_mi(cov, x1, y, 1e-3), np_mi(cov, x2, y, 1e-3),
                     np_mi(cov, x1 + x2, y, 1e-3))
      r, u1, u2, s = got
      np.testing.assert_allclose([r + u1, r + u2, r + u1 + u2 + s], [i1, i2, i12], atol=1e-12)


def test_invariances():
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    cov = random_cov(rng, 5)
    base = np.array(gaussian_pid_mmi(jnp.asarray(cov), [0, 1], [2], [3, 4]))
    # Swapping the sources swaps the unique atoms.
    swapped = np.array(gaussian_pid_mmi(jnp.asarray(cov), [2], [0, 1], [3, 4]))
    np.testing.assert_allclose(swapped, base[[0, 2, 1, 3]], atol=1e-12)
    # Invertible linear maps within blocks (here a per-variable scaling and a
    # permutation of the variables) leave MI unchanged when ridge = 0.
    s = np.diag(rng.uniform(0.5, 3.0, size=5))
    perm = [3, 0, 4, 2, 1]  # new index i holds old variable perm[i]
    cov2 = (s @ cov @ s)[np.ix_(perm, perm)]
    where = {old: new for new, old in enumerate(perm)}
    got = np.array(gaussian_pid_mmi(jnp.asarray(cov2), [where[0], where[1]], [where[2]],
                                    [where[3], where[4]]))
    np.testing.assert_allclose(got, base, atol=1e-10)


def test_gradients_jit_vmap():
  rng = np.random.default_rng(3)
  with jax.enable_x64(True):
    a = jnp.asarray(rng.normal(size=(4, 6)))

    def f(a, ridge=1e-3):
      return gaussian_pid_mmi(a @ a.T / 6, [0], [1, 2], [3], ridge=ridge).synergy

    g = jax.grad(f)(a)
    assert np.all(np.isfinite(np.asarray(g)))
    d = jnp.asarray(rng.normal(size=a.shape))
    h = 1e-6
    fd = (f(a + h * d) - f(a - h * d)) / (2 * h)
    np.testing.assert_allclose(float(jnp.sum(g * d)), float(fd), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(float(jax.jit(f)(a)), float(f(a)), rtol=1e-12)
    # vmap over a batch of covariances and over the ridge hyper-parameter.
    covs = jnp.stack([jnp.asarray(random_cov(rng, 4)) for _ in range(3)])
    out = jax.vmap(lambda c: gaussian_mi(c, [0, 1], [2, 3]))(covs)
    np.testing.assert_allclose(np.array(out), [np_mi(np.array(c), [0, 1], [2, 3]) for c in covs],
                               rtol=1e-9)
    ridges = jnp.array([0.0, 0.01, 0.1])
    out = jax.vmap(lambda r: gaussian_mi(covs[0], [0, 1], [2, 3], ridge=r))(ridges)
    np.testing.assert_allclose(np.array(out),
                               [np_mi(np.array(covs[0]), [0, 1], [2, 3], float(r)) for r in ridges],
                               rtol=1e-9)


def test_input_validation():
  cov = jnp.eye(3)
  with pytest.raises(ValueError, match="disjoint"):
    gaussian_pid_mmi(cov, [0], [0, 1], [2])
  with pytest.raises(ValueError, match="out of range"):
    gaussian_mi(cov, [0], [3])
  with pytest.raises(ValueError, match="square"):
    gaussian_mi(jnp.ones((2, 3)), [0], [1])
  with pytest.raises(ValueError, match="empty"):
    gaussian_mi(cov, [], [1])
