"""Tests for ssljax.losses.sigreg against a float64 NumPy Epps-Pulley statistic.

Reference: the paper's listing (LeJEPA, arXiv 2511.08544): complex empirical
characteristic function ``mean exp(i t x)`` on the symmetric knots
``linspace(−t_max, t_max, 2T − 1)``, ``N · trapz(|ecf − φ|² φ)``, mean over
slices and views; the slices are the kernel's (drawn from the same key).
Gradients: central finite differences of the reference.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import sigreg
from ssljax.testing import assert_distributed_equivalence

KEY = jax.random.key(3)


def np_sigreg(views, key, num_slices=256, t_max=3.0, num_points=17):
  z = np.asarray(views, np.float64)
  g = np.asarray(jax.random.normal(key, (z.shape[-1], num_slices), jnp.float32), np.float64)
  a = g / np.linalg.norm(g, axis=0)
  t = np.linspace(-t_max, t_max, 2 * num_points - 1)
  phi = np.exp(-0.5 * t ** 2)
  stats = []
  for x in z @ a:                                          # [N, M] per view
    ecf = np.exp(1j * x[..., None] * t).mean(0)            # [M, T]
    err = np.abs(ecf - phi) ** 2 * phi
    stats.append(np.trapezoid(err, t, axis=-1) * len(x))
  return np.mean(stats)


def _views(seed, v, n, d, scale=1.5):
  rng = np.random.default_rng(seed)
  return scale * rng.normal(size=(v, n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)))


def _fd_grad(f, x, h=1e-6):
  g = np.zeros_like(x)
  for idx in np.ndindex(*x.shape):
    e = np.zeros_like(x)
    e[idx] = h
    g[idx] = (f(x + e) - f(x - e)) / (2 * h)
  return g


@pytest.mark.parametrize("v,n,d,kw", [(2, 32, 4, {}), (1, 16, 3, {"num_slices": 5}),
                                       (3, 8, 6, {"t_max": 5.0, "num_points": 9})])
def test_matches_numpy(v, n, d, kw):
  views = _views(v * n + d, v, n, d)
  ref = np_sigreg(views, KEY, **kw)
  with jax.enable_x64(True):
    got, _ = sigreg.sigreg_loss(jnp.asarray(views), key=KEY, **kw)
  np.testing.assert_allclose(got, ref, rtol=1e-9)
  got32, _ = sigreg.sigreg_loss(jnp.asarray(views, jnp.float32), key=KEY, **kw)
  np.testing.assert_allclose(got32, ref, rtol=1e-5)


def test_gradient_matches_finite_differences():
  views = _views(0, 2, 8, 3)
  kw = {"num_slices": 4}
  with jax.enable_x64(True):
    got = jax.grad(lambda x: sigreg.sigreg_loss(x, key=KEY, **kw)[0])(jnp.asarray(views))
  ref = _fd_grad(lambda x: np_sigreg(x, KEY, **kw), views)
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_gaussian_embeddings_score_near_the_null_mean():
  # Mean of 4 independent batches: one batch's 256 slices of 32 dims are correlated.
  z = jax.random.normal(jax.random.key(0), (4, 4096, 32))
  loss, _ = sigreg.sigreg_loss(z, key=KEY)
  t = np.linspace(-3, 3, 4001)
  null_mean = np.trapezoid((1 - np.exp(-t ** 2)) * np.exp(-t ** 2 / 2), t)   # ≈ 1.05
  assert abs(float(loss) - null_mean) < 0.3, float(loss)
  assert float(sigreg.sigreg_loss(0.3 * z, key=KEY)[0]) > 50 * null_mean


def test_collapse_is_finite_in_float32():
  row = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8)), jnp.float32)
  views = jnp.tile(row, (2, 16, 1))
  loss, grad = jax.value_and_grad(lambda x: sigreg.sigreg_loss(x, key=KEY)[0])(views)
  assert np.isfinite(loss) and np.all(np.isfinite(grad))


def test_distributed_equals_single_device():
  views = jnp.asarray(_views(3, 2, 32, 5), jnp.float32)
  assert_distributed_equivalence(
      lambda x, axis_name: sigreg.sigreg_loss(x, key=KEY, num_slices=16, axis_name=axis_name)[0],
      (views,), batch_axes=(1,))
