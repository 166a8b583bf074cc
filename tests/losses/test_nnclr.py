"""Tests of ssljax.losses.nnclr against an independent float64 NumPy model of solo-learn's
NNCLR (``solo/methods/nnclr.py``: ``find_nn``, ``dequeue_and_enqueue``,
``training_step``; ``solo/losses/nnclr.py``: ``nnclr_loss_func``).

Tolerances: float64 (x64) value 1e-12 relative, gradient vs central finite
differences of the NumPy reference 1e-6; float32 value 1e-5 relative (logits
of unit vectors / τ = 0.1 are <= 10).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel, testing
from ssljax.losses import nnclr
from ssljax.losses.queue import QueueState, enqueue
from ssljax.testing import checkpoint_round_trip

# ----------------------------------------------------------------------------
# Independent NumPy reference (float64), written from solo-learn.
# ----------------------------------------------------------------------------


def np_normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_find_nn(z, queue):
  """solo-learn ``find_nn``: ``queue[argmax(z @ queue.T)]``; an empty queue: z itself."""
  if len(queue) == 0:
    return z
  return queue[np.argmax(z @ queue.T, axis=1)]


def np_nnclr_loss_func(nn, p, tau):
  """solo-learn ``nnclr_loss_func``: CE of ``nn @ p.T / τ`` with labels ``arange(n)``."""
  logits = np_normalize(nn) @ np_normalize(p).T / tau
  m = logits.max(axis=1, keepdims=True)
  lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
  return float(np.mean(lse - np.diag(logits)))


def np_nnclr(z, p, queue, count, *, tau=0.1):
  """Loss of one training step (valid support set = the first ``count`` slots)."""
  z = np_normalize(np.asarray(z, np.float64))
  p = np.asarray(p, np.float64)
  queue = np.asarray(queue, np.float64)[:count]
  nn1, nn2 = np_find_nn(z[0], queue), np_find_nn(z[1], queue)
  return 0.5 * np_nnclr_loss_func(nn1, p[1], tau) + 0.5 * np_nnclr_loss_func(nn2, p[0], tau)


def np_enqueue(queue, ptr, count, keys):
  queue = np.array(queue)
  for key in keys:
    queue[ptr] = key
    ptr = (ptr + 1) % len(queue)
    count = min(count + 1, len(queue))
  return queue, ptr, count


def _inputs(seed, n, d, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(2, n, d)).astype(dtype), rng.normal(size=(2, n, d)).astype(dtype))


def _filled(seed, d, k, count, dtype=jnp.float32):
  keys = np_normalize(np.random.default_rng(seed).normal(size=(count, d)))
  return enqueue(nnclr.nnclr_init_state(d, queue_size=k, dtype=dtype), jnp.asarray(keys, dtype))


# ----------------------------------------------------------------------------
# Value, gradient and pairing.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 3, 20])
def test_value_matches_numpy_float64(count):
  zv, pv = _inputs(0, 6, 4, np.float64)
  with jax.enable_x64(True):
    state = _filled(1, 4, 20, count, dtype=jnp.float64)
    loss, aux, _ = nnclr.nnclr_loss(zv, pv, state=state, queue_size=20)
    assert loss.dtype == jnp.float64
  np.testing.assert_allclose(float(loss), np_nnclr(zv, pv, np.asarray(state.queue), count),
                             rtol=1e-12)
  assert float(aux["queue_fill"]) == count / 20


def test_value_matches_numpy_float32_and_temperature():
  zv, pv = _inputs(2, 32, 16)
  state = _filled(3, 16, 128, 100)
  for tau in (0.1, 0.2):
    loss, _, _ = nnclr.nnclr_loss(zv, pv, state=state, queue_size=128, temperature=tau)
    np.testing.assert_allclose(float(loss), np_nnclr(zv, pv, np.asarray(state.queue), 100,
                                                     tau=tau), rtol=1e-5)


def test_gradient_matches_finite_differences_of_numpy_reference():
  zv, pv = _inputs(4, 4, 3, np.float64)
  with jax.enable_x64(True):
    state = _filled(5, 3, 8, 8, dtype=jnp.float64)
    gz, gp = jax.grad(lambda z, p: nnclr.nnclr_loss(z, p, state=state, queue_size=8)[0],
                      argnums=(0, 1))(zv, pv)
  queue = np.asarray(state.queue)
  fd = np.zeros_like(pv)
  eps = 1e-6
  for idx in np.ndindex(pv.shape):
    up, dn = pv.copy(), pv.copy()
    up[idx] += eps
    dn[idx] -= eps
    fd[idx] = (np_nnclr(zv, up, queue, 8) - np_nnclr(zv, dn, queue, 8)) / (2 * eps)
  np.testing.assert_allclose(np.asarray(gp), fd, rtol=1e-6, atol=1e-9)
  # The neighbours come from the queue: no gradient reaches the projections.
  assert np.all(np.asarray(gz) == 0.0)


def test_no_predictor_uses_the_projections_and_their_gradient():
  zv, _ = _inputs(6, 4, 3, np.float64)
  with jax.enable_x64(True):
    state = _filled(7, 3, 8, 8, dtype=jnp.float64)
    loss, g = jax.value_and_grad(lambda z: nnclr.nnclr_loss(z, state=state, queue_size=8)[0])(zv)
  queue = np.asarray(state.queue)
  np.testing.assert_allclose(float(loss), np_nnclr(zv, zv, queue, 8), rtol=1e-12)
  fd = np.zeros_like(zv)
  eps = 1e-6
  for idx in np.ndindex(zv.shape):   # the neighbours stay fixed under a small perturbation
    up, dn = zv.copy(), zv.copy()
    up[idx] += eps
    dn[idx] -= eps
    fd[idx] = (np_nnclr(up, up, queue, 8) - np_nnclr(dn, dn, queue, 8)) / (2 * eps)
  np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)


def test_pairing_neighbour_of_view1_against_predictions_of_view2():
  # Support set = two orthogonal keys; z1 sits next to e0, z2 next to e1.
  state = enqueue(nnclr.nnclr_init_state(2, queue_size=4), jnp.eye(2))
  z = np.array([[[0.9, 0.1]] * 3, [[0.1, 0.9]] * 3])              # [2, N=3, 2]
  p = np.random.default_rng(14).normal(size=(2, 3, 2))
  nn, cos = nnclr.nearest_neighbour(jnp.asarray(np_normalize(z[0]), jnp.float32), state)
  np.testing.assert_array_equal(np.asarray(nn), [[1.0, 0.0]] * 3)
  np.testing.assert_allclose(np.asarray(cos), 0.9 / np.hypot(0.9, 0.1), rtol=1e-6)
  nn1, nn2 = np.array([[1.0, 0.0]] * 3), np.array([[0.0, 1.0]] * 3)
  crossed = 0.5 * (np_nnclr_loss_func(nn1, p[1], 0.5) + np_nnclr_loss_func(nn2, p[0], 0.5))
  uncrossed = 0.5 * (np_nnclr_loss_func(nn1, p[0], 0.5) + np_nnclr_loss_func(nn2, p[1], 0.5))
  assert abs(crossed - uncrossed) > 0.01      # the example tells the pairings apart
  loss, _, _ = nnclr.nnclr_loss(z, p, state=state, queue_size=4, temperature=0.5)
  np.testing.assert_allclose(float(loss), crossed, rtol=1e-6)


def test_empty_support_set_uses_the_projection_itself():
  zv, pv = _inputs(8, 5, 4, np.float64)
  with jax.enable_x64(True):
    loss, aux, _ = nnclr.nnclr_loss(zv, pv, queue_size=16)
  np.testing.assert_allclose(float(loss), np_nnclr(zv, pv, np.zeros((16, 4)), 0), rtol=1e-12)
  np.testing.assert_allclose(float(aux["nn_cosine"]), 1.0, rtol=1e-12)


# ----------------------------------------------------------------------------
# Queue semantics over steps.
# ----------------------------------------------------------------------------


def test_several_steps_enqueue_view1_projections_fifo():
  rng = np.random.default_rng(9)
  state, ref = None, (np.zeros((12, 4)), 0, 0)
  step = jax.jit(functools.partial(nnclr.nnclr_loss, queue_size=12))
  for _ in range(5):   # 5 rows per step: wraps around K = 12
    zv, pv = rng.normal(size=(2, 2, 5, 4)).astype(np.float32)
    loss, _, state = step(zv, pv, state=state)
    np.testing.assert_allclose(float(loss), np_nnclr(zv, pv, ref[0], ref[2]), rtol=1e-5)
    ref = np_enqueue(*ref, np_normalize(zv[0].astype(np.float64)))
    np.testing.assert_allclose(np.asarray(state.queue), ref[0], atol=1e-6)
    assert (int(state.ptr), int(state.count)) == ref[1:]


# ----------------------------------------------------------------------------
# 1 device == 8 devices: value, gradient and new state.
# ----------------------------------------------------------------------------


def _loss_fn(views, predictions, queue, ptr, count, *, axis_name=None, out="loss"):
  loss, aux, new = nnclr.nnclr_loss(views, predictions, state=QueueState(queue, ptr, count),
                                    queue_size=queue.shape[0], axis_name=axis_name)
  return {"loss": loss, "aux": aux, "state": new}[out]


@pytest.mark.parametrize("count", [0, 20])
def test_distributed_equivalence_of_value_gradient_and_state(count):
  zv, pv = _inputs(10, 16, 4)
  state = _filled(11, 4, 24, count)
  args = (jnp.asarray(zv), jnp.asarray(pv), *state)
  testing.assert_distributed_equivalence(_loss_fn, args, batch_axes=(1, 1, None, None, None),
                                         argnums=(0, 1), rtol=1e-5, atol=1e-6)
  mesh = parallel.make_data_mesh()
  assert len(mesh.devices) == 8
  specs = (P(None, "data"), P(None, "data"), P(), P(), P())
  sharded = tuple(jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, specs))
  for out in ("state", "aux"):
    ref = jax.jit(functools.partial(_loss_fn, out=out))(*args)
    got_jit = jax.jit(functools.partial(_loss_fn, out=out))(*sharded)
    got_sm = jax.jit(jax.shard_map(functools.partial(_loss_fn, out=out, axis_name="data"),
                                   mesh=mesh, in_specs=specs, out_specs=P()))(*sharded)
    for got in (got_jit, got_sm):
      jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                           rtol=1e-6, atol=1e-7), got, ref)
  new = jax.jit(functools.partial(_loss_fn, out="state"))(*args)
  assert (int(new.ptr), int(new.count)) == ((count + 16) % 24, min(count + 16, 24))


# ----------------------------------------------------------------------------
# Robustness, contract details, checkpointing.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["identical", "zeros"])
def test_collapsed_batches_give_finite_loss_and_grads_float32(case):
  x = jnp.zeros((2, 16, 8)) if case == "zeros" else jnp.ones((2, 16, 8))
  state = nnclr.nnclr_init_state(8, queue_size=32)
  for _ in range(3):
    (loss, state), grads = jax.value_and_grad(
        lambda z, p, s: (lambda o: (o[0], o[2]))(nnclr.nnclr_loss(z, p, state=s, queue_size=32)),
        argnums=(0, 1), has_aux=True)(x, x, state)
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in grads)
  if case == "identical":   # 16 equal candidates per anchor: log 16
    np.testing.assert_allclose(float(loss), np.log(16.0), rtol=1e-6)


def test_errors():
  zv, pv = _inputs(12, 4, 3)
  _, _, state = nnclr.nnclr_loss(zv, pv, queue_size=8)
  with pytest.raises(ValueError, match="queue_size"):
    nnclr.nnclr_loss(zv, pv, state=state, queue_size=16)
  with pytest.raises(ValueError, match="temperature"):
    nnclr.nnclr_loss(zv, pv, temperature=-1.0, queue_size=8)
  with pytest.raises(ValueError, match="predictor output size"):
    nnclr.nnclr_loss(zv, pv[..., :2], queue_size=8)


def test_queue_state_round_trips_through_the_checkpointer(tmp_path):
  zv, pv = _inputs(13, 8, 4)
  _, _, state = nnclr.nnclr_loss(zv, pv, queue_size=12)
  got = checkpoint_round_trip({"nnclr": state}, str(tmp_path))["nnclr"]
  assert isinstance(got, QueueState)
  for a, b in zip(got, state):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(
      np.asarray(nnclr.nnclr_loss(pv, zv, state=got, queue_size=12)[0]),
      np.asarray(nnclr.nnclr_loss(pv, zv, state=state, queue_size=12)[0]))
