"""Tests for ssljax.losses.hypersphere against float64 NumPy versions of Wang & Isola's snippet.

Reference: ``align_loss(x, y, alpha) = (x − y).norm(dim=1).pow(alpha).mean()``
and ``uniform_loss(x, t) = pdist(x).pow(2).mul(−t).exp().mean().log()`` on
normalised features (``SsnL/align_uniform``); V views: pairs averaged /
views averaged. Gradients: central finite differences of the reference.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import hypersphere
from ssljax.testing import assert_distributed_equivalence


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_align(views, alpha=2.0):
  u = _unit(np.asarray(views, np.float64))
  pairs = list(itertools.combinations(range(len(u)), 2))
  return np.mean([np.mean(np.linalg.norm(u[v] - u[w], axis=1) ** alpha) for v, w in pairs])


def np_uniform(views, t=2.0):
  u = _unit(np.asarray(views, np.float64))
  out = []
  for x in u:
    i, j = np.triu_indices(len(x), k=1)                          # torch.pdist pairs
    out.append(np.log(np.mean(np.exp(-t * np.sum((x[i] - x[j]) ** 2, -1)))))
  return np.mean(out)


def _views(seed, v, n, d, noise=0.3):
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(n, d))
  return np.stack([base + noise * rng.normal(size=(n, d)) for _ in range(v)])


def _fd_grad(f, x, h=1e-6):
  g = np.zeros_like(x)
  for idx in np.ndindex(*x.shape):
    e = np.zeros_like(x)
    e[idx] = h
    g[idx] = (f(x + e) - f(x - e)) / (2 * h)
  return g


@pytest.mark.parametrize("v,n,d,alpha", [(2, 16, 4, 2.0), (3, 8, 5, 1.0), (4, 6, 3, 3.0)])
def test_alignment_matches_numpy(v, n, d, alpha):
  views = _views(v + n, v, n, d)
  with jax.enable_x64(True):
    got, _ = hypersphere.alignment_loss(jnp.asarray(views), alpha=alpha)
    grad = jax.grad(lambda x: hypersphere.alignment_loss(x, alpha=alpha)[0])(jnp.asarray(views))
  np.testing.assert_allclose(got, np_align(views, alpha), rtol=1e-12)
  np.testing.assert_allclose(grad, _fd_grad(lambda x: np_align(x, alpha), views),
                             rtol=1e-5, atol=1e-8)
  got32, _ = hypersphere.alignment_loss(jnp.asarray(views, jnp.float32), alpha=alpha)
  np.testing.assert_allclose(got32, np_align(views, alpha), rtol=1e-5)


@pytest.mark.parametrize("v,n,d,t", [(2, 16, 4, 2.0), (1, 9, 3, 0.5), (3, 8, 5, 20.0)])
def test_uniformity_matches_numpy(v, n, d, t):
  views = _views(v * n, v, n, d, noise=1.0)
  with jax.enable_x64(True):
    got, aux = hypersphere.uniformity_loss(jnp.asarray(views), t=t)
    grad = jax.grad(lambda x: hypersphere.uniformity_loss(x, t=t)[0])(jnp.asarray(views))
  np.testing.assert_allclose(got, np_uniform(views, t), rtol=1e-12)
  np.testing.assert_allclose(grad, _fd_grad(lambda x: np_uniform(x, t), views),
                             rtol=1e-5, atol=1e-8)
  got32, _ = hypersphere.uniformity_loss(jnp.asarray(views, jnp.float32), t=t)
  np.testing.assert_allclose(got32, np_uniform(views, t), rtol=1e-5)


def test_uniformity_large_t_does_not_underflow():
  views = jnp.asarray(_views(0, 2, 16, 4, noise=1.0), jnp.float32)
  loss, _ = hypersphere.uniformity_loss(views, t=200.0)   # exp(−200·d²) underflows unshifted
  np.testing.assert_allclose(loss, np_uniform(np.asarray(views), 200.0), rtol=1e-4)


def test_collapse_is_finite_in_float32():
  row = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8)), jnp.float32)
  views = jnp.tile(row, (2, 16, 1))
  for fn, want in ((hypersphere.alignment_loss, 0.0), (hypersphere.uniformity_loss, 0.0)):
    for kw in ({}, {"alpha": 1.0} if fn is hypersphere.alignment_loss else {"t": 2.0}):
      loss, grad = jax.value_and_grad(lambda x: fn(x, **kw)[0])(views)
      np.testing.assert_allclose(loss, want, atol=1e-6)
      assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("fn", [hypersphere.alignment_loss, hypersphere.uniformity_loss])
def test_distributed_equals_single_device(fn):
  views = jnp.asarray(_views(3, 2, 32, 6, noise=1.0), jnp.float32)
  assert_distributed_equivalence(lambda x, axis_name: fn(x, axis_name=axis_name)[0],
                                 (views,), batch_axes=(1,))


def test_input_validation():
  with pytest.raises(ValueError, match=r"\[V>=2"):
    hypersphere.alignment_loss(jnp.ones((1, 8, 4)))
  with pytest.raises(ValueError, match="at least 2"):
    hypersphere.uniformity_loss(jnp.ones((1, 1, 4)))
