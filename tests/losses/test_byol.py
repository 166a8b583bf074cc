"""Tests for ssljax.losses.byol.

Float32 tolerance: the loss is a batch mean of 2 − 2·cos terms (values 0-8)
built from L2-normalised vectors; float32 round-off in the norms and dot
products is ≈ 1e-7 relative per term, so rtol = 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from jax.test_util import check_grads

from ssljax.losses import byol
from ssljax.testing import assert_distributed_equivalence

F32_RTOL = 1e-5

_byol = jax.jit(byol.byol_loss, static_argnames=("view_reduction", "axis_name"))


def _loss(q1, q2, t1, t2, **kw):
  """The loss in the old four-array order: predictions (q1, q2), targets (t1, t2)."""
  return _byol(jnp.stack([q1, q2]), jnp.stack([t1, t2]), **kw)
_reg = jax.jit(byol.regression_loss)


def np_cos(a, b):
  return float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))


def np_byol(q1, q2, t1, t2, reduction="sum"):
  """Float64 loop reference: Σ over both directions of 2 − 2·cos, mean over the batch."""
  n = q1.shape[0]
  per = [(2 - 2 * np_cos(q1[i], t2[i])) + (2 - 2 * np_cos(q2[i], t1[i])) for i in range(n)]
  out = float(np.mean(per))
  return out if reduction == "sum" else out / 2


def _rand(shape, seed, dtype=np.float64):
  return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _four(n, d, seed, dtype=np.float64):
  return tuple(_rand((n, d), seed + k, dtype) for k in range(4))


# N >= 2: without axis_name, N < V = 2 is rejected as a likely examples-first array.
@pytest.mark.parametrize("n,d", [(2, 3), (6, 4), (16, 32)])
def test_matches_numpy_float64(n, d):
  arrays = _four(n, d, n)
  with jax.enable_x64(True):
    args = tuple(jnp.asarray(a) for a in arrays)
    got_sum, aux = _loss(*args)
    got_mean, _ = _loss(*args, view_reduction="mean")
  assert got_sum.dtype == jnp.float64
  np.testing.assert_allclose(float(got_sum), np_byol(*arrays), rtol=1e-10)
  np.testing.assert_allclose(float(got_mean), np_byol(*arrays, "mean"), rtol=1e-10)
  q1, q2, t1, t2 = arrays
  np.testing.assert_allclose(float(aux["cosine_12"]),
                             np.mean([np_cos(q1[i], t2[i]) for i in range(n)]), rtol=1e-10)
  np.testing.assert_allclose(float(aux["cosine_21"]),
                             np.mean([np_cos(q2[i], t1[i]) for i in range(n)]), rtol=1e-10)


def test_float32_tolerance():
  arrays = _four(16, 8, 40, np.float32)
  got, _ = _loss(*map(jnp.asarray, arrays))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), np_byol(*[a.astype(np.float64) for a in arrays]),
                             rtol=F32_RTOL)


def test_regression_loss_analytic_values():
  p = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0], [2.0, 0.0]])
  z = jnp.array([[0.0, 2.0], [2.0, 2.0], [0.0, -1.0], [0.0, 0.0]])
  # orthogonal → 2, parallel (any scale) → 0, opposite → 4,
  # zero target → ||p̂||² = 1 (finite thanks to the 1e-12 floor, as in the official code).
  np.testing.assert_allclose(np.asarray(_reg(p, z)), [2.0, 0.0, 4.0, 1.0], atol=1e-6)


def test_symmetry_and_permutation_invariance():
  q1, q2, t1, t2 = _four(8, 5, 50)
  perm = np.random.default_rng(1).permutation(8)
  with jax.enable_x64(True):
    a, _ = _loss(*map(jnp.asarray, (q1, q2, t1, t2)))
    swapped, _ = _loss(*map(jnp.asarray, (q2, q1, t2, t1)))
    permuted, _ = _loss(*map(jnp.asarray, (q1[perm], q2[perm], t1[perm], t2[perm])))
    scaled, _ = _loss(*map(jnp.asarray, (2 * q1, 0.3 * q2, 5 * t1, t2)))
  for v in (swapped, permuted, scaled):
    np.testing.assert_allclose(float(v), float(a), rtol=1e-12)


def test_stop_gradient_on_targets_and_check_grads():
  q1, q2, t1, t2 = _four(3, 2, 60)
  with jax.enable_x64(True):
    args = tuple(map(jnp.asarray, (q1, q2, t1, t2)))
    grads = jax.jit(jax.grad(lambda a, b, c, d: byol.byol_loss((a, b), (c, d))[0],
                             argnums=(0, 1, 2, 3)))(*args)
    assert all(np.all(np.isfinite(g)) for g in grads)
    np.testing.assert_array_equal(np.asarray(grads[2]), 0.0)
    np.testing.assert_array_equal(np.asarray(grads[3]), 0.0)
    f = jax.jit(lambda a, b: byol.byol_loss((a, b), args[2:])[0])
    check_grads(f, args[:2], order=1, modes=("rev",))


def test_jit_and_vmap_over_target_sets():
  # BYOL has no numeric hyper-parameter; vmap over a stack of target batches
  # (e.g. several EMA targets) instead.
  q1, q2, _, _ = _four(6, 4, 70, np.float32)
  targets = _rand((3, 2, 6, 4), 80, np.float32)
  f = jax.jit(jax.vmap(lambda t: byol.byol_loss((q1, q2), t)[0]))
  out = np.asarray(f(jnp.asarray(targets)))
  for k in range(3):
    want = np_byol(*(a.astype(np.float64) for a in (q1, q2, targets[k, 0], targets[k, 1])))
    np.testing.assert_allclose(out[k], want, rtol=F32_RTOL)


def test_crossed_pairing_swapping_target_views_changes_value():
  """predictions[0] regresses targets[1] and predictions[1] regresses targets[0]."""
  q1, q2, t1, t2 = _four(8, 5, 95)
  with jax.enable_x64(True):
    preds, targs = jnp.stack([q1, q2]), jnp.stack([t1, t2])
    got, aux = _byol(preds, targs)
    swapped, _ = _byol(preds, targs[::-1])
  # The uncrossed pairing (q1 with t1, q2 with t2) is what swapping the target views computes.
  np.testing.assert_allclose(float(swapped), np_byol(q1, q2, t2, t1), rtol=1e-10)
  np.testing.assert_allclose(float(got), np_byol(q1, q2, t1, t2), rtol=1e-10)
  assert abs(float(swapped) - float(got)) > 1e-3
  np.testing.assert_allclose(float(aux["cosine_12"]),
                             np.mean([np_cos(q1[i], t2[i]) for i in range(8)]), rtol=1e-10)


def test_equals_old_four_argument_form():
  """Same value as the former byol_loss(q1, q2, t1, t2): Σ of regression_loss(q1, t2), (q2, t1)."""
  q1, q2, t1, t2 = map(jnp.asarray, _four(8, 5, 97, np.float32))
  old = jnp.mean(byol.regression_loss(q1, t2) + byol.regression_loss(q2, t1))
  new, _ = byol.byol_loss((q1, q2), (t1, t2))
  np.testing.assert_array_equal(np.asarray(new), np.asarray(old))


def test_sequence_input_equals_stacked_input_and_aux_scalars():
  q1, q2, t1, t2 = _four(6, 4, 99, np.float32)
  stacked, aux = byol.byol_loss(np.stack([q1, q2]), np.stack([t1, t2]))
  for pair in ((list, list), (tuple, list), (tuple, tuple)):
    got, got_aux = byol.byol_loss(pair[0]((q1, q2)), pair[1]((t1, t2)))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(stacked))
    for k in aux:
      np.testing.assert_array_equal(np.asarray(got_aux[k]), np.asarray(aux[k]))
  assert all(jnp.shape(v) == () for v in aux.values())


def test_distributed_equivalence():
  q1, q2, t1, t2 = _four(16, 4, 90, np.float32)
  fn = lambda p, t, axis_name=None: byol.byol_loss(p, t, axis_name=axis_name)[0]
  # The targets' gradient is zero (stop-gradient) in every mode.
  assert_distributed_equivalence(fn, (np.stack([q1, q2]), np.stack([t1, t2])),
                                 batch_axes=(1, 1), argnums=(0, 1))


@pytest.mark.parametrize("bad", [
    np.ones((16, 2, 4), np.float32),           # examples-first [N, V, D]
    np.ones((3, 16, 4), np.float32),           # V = 3
    np.ones((16, 4), np.float32),              # rank 2
    (np.ones((16, 4), np.float32), np.ones((16, 5), np.float32)),   # mismatched views
], ids=["examples_first", "three_views", "rank2", "mismatched"])
def test_bad_layouts_raise(bad):
  good = np.ones((2, 16, 4), np.float32)
  with pytest.raises(ValueError, match="predictions must be"):
    byol.byol_loss(bad, good)
  with pytest.raises(ValueError, match="targets must be"):
    byol.byol_loss(good, bad)


def test_value_errors():
  good = jnp.ones((2, 4, 3))
  with pytest.raises(ValueError, match="share V and N"):
    byol.byol_loss(good, jnp.ones((2, 5, 3)))
  with pytest.raises(ValueError, match="same shape \\[2, N, D\\]"):
    byol.byol_loss(good, jnp.ones((2, 4, 5)))
  with pytest.raises(ValueError, match="view_reduction"):
    byol.byol_loss(good, good, view_reduction="avg")
  with pytest.raises(ValueError, match="same shape"):
    byol.regression_loss(jnp.ones((4, 3)), jnp.ones((3, 3)))
