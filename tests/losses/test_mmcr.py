"""Tests for ssljax.losses.mmcr against a float64 NumPy port of the official ``MMCR_Loss``.

Reference (``ThomasYerxa/mmcr`` ``mmcr/cifar_stl/loss_mmcr.py``): normalise,
centroids over the views, ``lmbda · Σ_i svdvals(Z_i).sum() / B −
svdvals(C).sum()``. Gradients: central finite differences of the reference
(generic inputs: distinct, non-zero singular values).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import mmcr
from ssljax.testing import assert_distributed_equivalence


def np_mmcr(views, lmbda=0.0):
  z = np.asarray(views, np.float64)
  u = z / np.linalg.norm(z, axis=-1, keepdims=True)
  per_example = np.swapaxes(u, 0, 1)                  # [B, V, D] (official "B C N" transposed)
  global_nuc = np.linalg.svd(per_example.mean(1), compute_uv=False).sum()
  local_nuc = sum(np.linalg.svd(m, compute_uv=False).sum() for m in per_example)
  return lmbda * local_nuc / len(per_example) - global_nuc


def _views(seed, v, n, d, noise=0.5):
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


@pytest.mark.parametrize("v,n,d,lmbda", [(2, 16, 4, 0.0), (4, 6, 8, 0.0), (3, 10, 5, 0.5)])
def test_matches_numpy(v, n, d, lmbda):
  views = _views(v * n + d, v, n, d)
  with jax.enable_x64(True):
    got, aux = mmcr.mmcr_loss(jnp.asarray(views), lmbda=lmbda)
    grad = jax.grad(lambda x: mmcr.mmcr_loss(x, lmbda=lmbda)[0])(jnp.asarray(views))
  np.testing.assert_allclose(got, np_mmcr(views, lmbda), rtol=1e-12)
  np.testing.assert_allclose(aux["global_nuc"], -np_mmcr(views, 0.0), rtol=1e-12)
  np.testing.assert_allclose(grad, _fd_grad(lambda x: np_mmcr(x, lmbda), views),
                             rtol=1e-5, atol=1e-8)
  got32, _ = mmcr.mmcr_loss(jnp.asarray(views, jnp.float32), lmbda=lmbda)
  np.testing.assert_allclose(got32, np_mmcr(views, lmbda), rtol=1e-5)


def test_traced_lmbda_equals_python_lmbda():
  views = jnp.asarray(_views(1, 2, 8, 4), jnp.float32)
  lm = jnp.array([0.0, 0.5])
  out = jax.vmap(lambda l: mmcr.mmcr_loss(views, lmbda=l)[0])(lm)
  for i, l in enumerate([0.0, 0.5]):
    np.testing.assert_allclose(out[i], np_mmcr(np.asarray(views), l), rtol=1e-5)


def test_collapse_and_rank_deficiency_are_finite_in_float32():
  row = jnp.asarray(np.random.default_rng(0).normal(size=(1, 8)), jnp.float32)
  views = jnp.tile(row, (2, 16, 1))
  for lmbda in (0.0, 1.0):
    loss, grad = jax.value_and_grad(lambda x: mmcr.mmcr_loss(x, lmbda=lmbda)[0])(views)
    # ||1·cᵀ||_* = sqrt(16); each Z_i has two equal unit rows: ||Z_i||_* = sqrt(2).
    np.testing.assert_allclose(loss, lmbda * np.sqrt(2) - 4.0, rtol=1e-5)
    assert np.all(np.isfinite(grad))
  # Repeated singular values (orthogonal centroids): svd's own gradient is NaN here.
  views = jnp.stack([jnp.eye(6), jnp.eye(6)])
  grad = jax.grad(lambda x: mmcr.mmcr_loss(x)[0])(views)
  assert np.all(np.isfinite(grad))


def test_distributed_equals_single_device():
  views = jnp.asarray(_views(3, 2, 32, 6), jnp.float32)
  assert_distributed_equivalence(
      lambda x, axis_name: mmcr.mmcr_loss(x, lmbda=0.3, axis_name=axis_name)[0],
      (views,), batch_axes=(1,))


def test_input_validation():
  with pytest.raises(ValueError, match=r"\[V>=2"):
    mmcr.mmcr_loss(jnp.ones((1, 8, 4)))
