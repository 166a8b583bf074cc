"""Tests for ssljax.losses.wmse against an independent float64 NumPy W-MSE.

The reference follows the official loop (``htdt/self-supervised``
``methods/w_mse.py`` + ``whitening.py``): for each iteration, the permutation
cut into sub-batches, each view of each sub-batch whitened by the explicit
inverse Cholesky factor, then ``2 − 2·mean cos`` summed over view pairs.
Gradients: central finite differences of the reference (float64).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import wmse
from ssljax.testing import assert_distributed_equivalence

KEY = jax.random.key(7)


def np_whiten(x, eps):
  """Whitening2d.forward (training mode): W = L⁻¹, z = (x − m) Wᵀ."""
  xc = x - x.mean(0)
  cov = xc.T @ xc / (len(x) - 1)
  cov = (1 - eps) * cov + eps * np.eye(x.shape[1])
  return xc @ np.linalg.inv(np.linalg.cholesky(cov)).T


def np_wmse(views, perms, w_size, eps):
  """Official W-MSE loss (float64), given the permutation of each iteration."""
  views = np.asarray(views, np.float64)
  v, n, _ = views.shape
  loss = 0.0
  for perm in perms:
    z = np.empty_like(views)
    for idx in np.asarray(perm).reshape(-1, w_size):
      for i in range(v):
        z[i, idx] = np_whiten(views[i, idx], eps)
    u = z / np.linalg.norm(z, axis=-1, keepdims=True)
    for i, j in itertools.combinations(range(v), 2):
      loss += 2 - 2 * np.mean(np.sum(u[i] * u[j], -1))
  return loss / (len(perms) * v * (v - 1) / 2)


def _perms(key, n, w_iter):
  return [np.asarray(jax.random.permutation(k, n)) for k in jax.random.split(key, w_iter)]


def _views(seed, v, n, d, noise=0.5):
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(n, d)) @ (np.eye(d) + 0.5 * rng.normal(size=(d, d))) + 0.3
  return np.stack([base + noise * rng.normal(size=(n, d)) for _ in range(v)])


CASES = [  # (V, N, D, w_size, w_iter, eps)
    (2, 32, 4, 8, 1, 0.0),
    (2, 24, 5, 12, 3, 0.0),
    (4, 16, 3, 8, 2, 1e-3),
    (3, 12, 4, None, 1, 1e-5),
]


@pytest.mark.parametrize("v,n,d,w_size,w_iter,eps", CASES)
def test_value_matches_numpy_float64_and_float32(v, n, d, w_size, w_iter, eps):
  views = _views(v * n + d, v, n, d)
  ref = np_wmse(views, _perms(KEY, n, w_iter), w_size or n, eps)
  with jax.enable_x64(True):
    got, aux = wmse.wmse_loss(jnp.asarray(views), key=KEY, w_size=w_size, w_iter=w_iter, eps=eps)
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(got, ref, rtol=1e-10)
  np.testing.assert_allclose(aux["cosine"], (2 - ref) / 2, rtol=1e-10)
  got32, _ = jax.jit(lambda x: wmse.wmse_loss(x, key=KEY, w_size=w_size, w_iter=w_iter,
                                              eps=eps))(jnp.asarray(views, jnp.float32))
  np.testing.assert_allclose(got32, ref, rtol=1e-4)


def _fd_grad(f, x, h=1e-6):
  g = np.zeros_like(x)
  for idx in np.ndindex(*x.shape):
    e = np.zeros_like(x)
    e[idx] = h
    g[idx] = (f(x + e) - f(x - e)) / (2 * h)
  return g


@pytest.mark.parametrize("v,n,d,w_size,w_iter,eps", [CASES[0], CASES[2]])
def test_gradient_matches_finite_differences_of_reference(v, n, d, w_size, w_iter, eps):
  views = _views(3, v, n, d)
  perms = _perms(KEY, n, w_iter)
  ref = _fd_grad(lambda x: np_wmse(x, perms, w_size, eps), views)
  with jax.enable_x64(True):
    got = jax.grad(lambda x: wmse.wmse_loss(x, key=KEY, w_size=w_size, w_iter=w_iter,
                                            eps=eps)[0])(jnp.asarray(views))
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-8)


def test_whitened_sub_batches_have_identity_covariance():
  x = _views(0, 1, 64, 6)[0]
  with jax.enable_x64(True):
    z = np.asarray(wmse.whiten(jnp.asarray(x).reshape(4, 16, 6), eps=0.0))
  for s in z:
    np.testing.assert_allclose(np.cov(s, rowvar=False), np.eye(6), atol=1e-10)
    np.testing.assert_allclose(s.mean(0), 0.0, atol=1e-12)


def test_permutation_changes_the_value_and_whole_batch_does_not_depend_on_key():
  views = jnp.asarray(_views(1, 2, 32, 4), jnp.float32)
  a = wmse.wmse_loss(views, key=jax.random.key(0), w_size=8)[0]
  b = wmse.wmse_loss(views, key=jax.random.key(1), w_size=8)[0]
  assert abs(float(a) - float(b)) > 1e-4
  c = wmse.wmse_loss(views, key=jax.random.key(0), w_size=None)[0]
  d = wmse.wmse_loss(views, key=jax.random.key(1), w_size=64)[0]   # ≥ N: whole batch
  np.testing.assert_allclose(c, d, rtol=1e-6)


def test_collapse_is_finite_in_float32():
  row = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8)), jnp.float32)
  views = jnp.tile(row, (2, 32, 1))
  loss, grad = jax.jit(jax.value_and_grad(lambda x: wmse.wmse_loss(x, key=KEY, w_size=16)[0]))(
      views)
  # Whitened rows are rounding residuals of the centring: the value is arbitrary in [0, 4].
  assert np.isfinite(loss) and 0.0 <= float(loss) <= 4.0
  assert np.all(np.isfinite(grad))
  # D ≥ w_size (singular sub-batch covariance): finite thanks to ε.
  views = jnp.asarray(_views(2, 2, 32, 16), jnp.float32)
  loss, grad = jax.value_and_grad(lambda x: wmse.wmse_loss(x, key=KEY, w_size=8)[0])(views)
  assert np.isfinite(loss) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("v,w_size,w_iter", [(2, 16, 1), (4, 8, 2)])
def test_distributed_equals_single_device(v, w_size, w_iter):
  views = jnp.asarray(_views(5, v, 32, 4), jnp.float32)
  assert_distributed_equivalence(
      lambda x, axis_name: wmse.wmse_loss(x, key=KEY, w_size=w_size, w_iter=w_iter,
                                          axis_name=axis_name)[0],
      (views,), batch_axes=(1,), rtol=1e-5, atol=1e-6)


def test_input_validation():
  with pytest.raises(ValueError, match="multiple of w_size"):
    wmse.wmse_loss(jnp.ones((2, 24, 4)), key=KEY, w_size=16)
  with pytest.raises(ValueError, match=r"\[V>=2"):
    wmse.wmse_loss(jnp.ones((1, 24, 4)), key=KEY)
