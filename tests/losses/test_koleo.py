"""Tests for ssljax.losses.koleo against a float64 NumPy port of DINOv2's ``KoLeoLoss``.

Reference (``facebookresearch/dinov2`` ``dinov2/loss/koleo_loss.py``):
``F.normalize(eps)``, nearest neighbour by the largest inner product (self
excluded), ``PairwiseDistance(2, eps)`` (``||a − b + eps||``), ``−mean log(d +
eps)``; per view, summed over views (``ssl_meta_arch.py``). Gradients:
central finite differences of the reference (the neighbour is fixed locally).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import koleo
from ssljax.testing import assert_distributed_equivalence


def np_koleo(views, eps=1e-8):
  total = 0.0
  for x in np.asarray(views, np.float64):
    u = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
    dots = u @ u.T
    np.fill_diagonal(dots, -np.inf)
    nn = np.argmax(dots, axis=1)
    dist = np.linalg.norm(u - u[nn] + eps, axis=-1)
    total += -np.mean(np.log(dist + eps))
  return total


def _views(seed, v, n, d):
  return np.random.default_rng(seed).normal(size=(v, n, d))


def _fd_grad(f, x, h=1e-6):
  g = np.zeros_like(x)
  for idx in np.ndindex(*x.shape):
    e = np.zeros_like(x)
    e[idx] = h
    g[idx] = (f(x + e) - f(x - e)) / (2 * h)
  return g


@pytest.mark.parametrize("v,n,d", [(1, 16, 4), (2, 12, 3), (3, 8, 6)])
def test_matches_numpy(v, n, d):
  views = _views(v * n + d, v, n, d)
  with jax.enable_x64(True):
    got, aux = koleo.koleo_loss(jnp.asarray(views))
    grad = jax.grad(lambda x: koleo.koleo_loss(x)[0])(jnp.asarray(views))
  np.testing.assert_allclose(got, np_koleo(views), rtol=1e-12)
  np.testing.assert_allclose(grad, _fd_grad(np_koleo, views), rtol=1e-5, atol=1e-7)
  got32, _ = koleo.koleo_loss(jnp.asarray(views, jnp.float32))
  np.testing.assert_allclose(got32, np_koleo(views), rtol=1e-5)


def test_views_are_summed_and_not_paired():
  views = _views(0, 2, 16, 4)
  a = float(koleo.koleo_loss(jnp.asarray(views[:1]))[0])
  b = float(koleo.koleo_loss(jnp.asarray(views[1:]))[0])
  np.testing.assert_allclose(koleo.koleo_loss(jnp.asarray(views))[0], a + b, rtol=1e-6)
  # A duplicate in the OTHER view is not a neighbour: unchanged value.
  dup = np.stack([views[0], views[0]])
  np.testing.assert_allclose(koleo.koleo_loss(jnp.asarray(dup))[0], 2 * a, rtol=1e-6)


def test_collapse_is_finite_in_float32():
  row = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8)), jnp.float32)
  views = jnp.tile(row, (2, 16, 1))
  loss, grad = jax.value_and_grad(lambda x: koleo.koleo_loss(x)[0])(views)
  assert np.isfinite(loss) and np.all(np.isfinite(grad))
  np.testing.assert_allclose(loss, -2 * np.log(1e-8 * np.sqrt(8) + 1e-8), rtol=1e-3)


def test_distributed_equals_single_device():
  views = jnp.asarray(_views(3, 2, 32, 5), jnp.float32)
  assert_distributed_equivalence(lambda x, axis_name: koleo.koleo_loss(x, axis_name=axis_name)[0],
                                 (views,), batch_axes=(1,))


def test_input_validation():
  with pytest.raises(ValueError, match="at least 2"):
    koleo.koleo_loss(jnp.ones((1, 1, 4)))
