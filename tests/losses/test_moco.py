"""Tests of ssljax.losses.moco (and the FIFO queue of ssljax.losses.queue) against an
independent float64 NumPy model of the official ``MoCo.forward`` + ``_dequeue_and_enqueue``
(facebookresearch/moco ``moco/builder.py``) and of solo-learn's symmetrised
``mocov2plus.py``.

Tolerances: float64 (x64) value 1e-12 relative, gradient vs central finite
differences of the NumPy reference 1e-6; float32 value 1e-5 relative (logits
of unit vectors / τ = 0.2 are <= 5, the log-sum-exp loses < 2 digits).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel, testing
from ssljax.losses import moco
from ssljax.losses.queue import QueueState, enqueue, init_queue
from ssljax.testing import checkpoint_round_trip

# ----------------------------------------------------------------------------
# Independent NumPy reference (float64), written from the official code.
# ----------------------------------------------------------------------------


def np_normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_info_nce(q, k, negatives, tau):
  """solo-learn ``moco_loss_func`` / official forward: CE of [pos, neg] logits with label 0."""
  losses = []
  for qi, ki in zip(q, k):
    logits = np.concatenate([[qi @ ki], negatives @ qi]) / tau
    m = logits.max()
    losses.append(m + np.log(np.sum(np.exp(logits - m))) - logits[0])
  return float(np.mean(losses))


def np_moco(q, k, queue, count, *, tau=0.2, symmetric=False):
  """Loss of one step; ``queue`` [Q, K, D] with slots < count valid."""
  q, k = np_normalize(np.asarray(q, np.float64)), np_normalize(np.asarray(k, np.float64))
  queue = np.asarray(queue, np.float64)
  if not symmetric:   # official: q = view 1, k = view 2, negatives = queue
    return np_info_nce(q[0], k[1], queue[0, :count], tau)
  # solo-learn: (loss(q1, k2, queue of view-2 keys) + loss(q2, k1, queue of view-1 keys)) / 2
  return 0.5 * (np_info_nce(q[0], k[1], queue[0, :count], tau)
                + np_info_nce(q[1], k[0], queue[1, :count], tau))


def np_enqueue(queue, ptr, count, keys):
  """Slot-by-slot FIFO: queue [Q, K, D], keys [Q, B, D]."""
  queue = np.array(queue)
  size = queue.shape[1]
  for b in range(keys.shape[1]):
    queue[:, ptr] = keys[:, b]
    ptr = (ptr + 1) % size
    count = min(count + 1, size)
  return queue, ptr, count


def _inputs(seed, n, d, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(2, n, d)).astype(dtype), rng.normal(size=(2, n, d)).astype(dtype))


def _filled(seed, d, k, count, q=1, dtype=jnp.float32):
  """A queue with ``count`` random unit keys enqueued in order."""
  keys = np_normalize(np.random.default_rng(seed).normal(size=(q, count, d)))
  return enqueue(init_queue((q, k, d), dtype=dtype), jnp.asarray(keys, dtype))


# ----------------------------------------------------------------------------
# Value and gradient.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("count", [0, 5, 12])
def test_value_matches_numpy_float64(symmetric, count):
  qv, kv = _inputs(0, 6, 4, np.float64)
  with jax.enable_x64(True):
    state = _filled(1, 4, 12, count, q=2 if symmetric else 1, dtype=jnp.float64)
    loss, aux, _ = moco.moco_loss(qv, kv, state=state, queue_size=12, symmetric=symmetric)
    assert loss.dtype == jnp.float64
  ref = np_moco(qv, kv, np.asarray(state.queue), count, symmetric=symmetric)
  np.testing.assert_allclose(float(loss), ref, rtol=1e-12)
  if count == 0:
    assert float(loss) == 0.0          # only the positive: log 1
  assert float(aux["queue_fill"]) == count / 12


@pytest.mark.parametrize("symmetric", [False, True])
def test_value_matches_numpy_float32(symmetric):
  qv, kv = _inputs(2, 32, 16)
  state = _filled(3, 16, 64, 48, q=2 if symmetric else 1)
  loss, _, _ = moco.moco_loss(qv, kv, state=state, queue_size=64, symmetric=symmetric)
  ref = np_moco(qv, kv, np.asarray(state.queue), 48, symmetric=symmetric)
  np.testing.assert_allclose(float(loss), ref, rtol=1e-5)


@pytest.mark.parametrize("symmetric", [False, True])
def test_gradient_matches_finite_differences_of_numpy_reference(symmetric):
  qv, kv = _inputs(4, 4, 3, np.float64)
  with jax.enable_x64(True):
    state = _filled(5, 3, 8, 6, q=2 if symmetric else 1, dtype=jnp.float64)
    gq, gk = jax.grad(lambda a, b: moco.moco_loss(a, b, state=state, queue_size=8,
                                                  symmetric=symmetric)[0], argnums=(0, 1))(qv, kv)
  queue = np.asarray(state.queue)
  fd = np.zeros_like(qv)
  eps = 1e-6
  for idx in np.ndindex(qv.shape):
    up, dn = qv.copy(), qv.copy()
    up[idx] += eps
    dn[idx] -= eps
    fd[idx] = (np_moco(up, kv, queue, 6, symmetric=symmetric)
               - np_moco(dn, kv, queue, 6, symmetric=symmetric)) / (2 * eps)
  np.testing.assert_allclose(np.asarray(gq), fd, rtol=1e-6, atol=1e-9)
  assert np.all(np.asarray(gk) == 0.0)     # keys come from the momentum encoder: no gradient
  if not symmetric:                         # view 2's queries do not enter the official loss
    assert np.all(np.asarray(gq)[1] == 0.0)


def test_official_random_start_uses_every_slot():
  qv, kv = _inputs(6, 8, 4)
  state = moco.moco_init_state(4, queue_size=16, key=jax.random.key(0))
  assert int(state.count) == 16
  np.testing.assert_allclose(np.linalg.norm(state.queue, axis=-1), 1.0, rtol=1e-6)
  loss, _, _ = moco.moco_loss(qv, kv, state=state, queue_size=16)
  np.testing.assert_allclose(float(loss), np_moco(qv, kv, np.asarray(state.queue), 16),
                             rtol=1e-5)


# ----------------------------------------------------------------------------
# Queue semantics.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("k, batches", [(8, [3, 3, 3, 3]), (6, [4, 4, 4]), (4, [6, 1, 9]),
                                        (5, [5, 5])])
def test_enqueue_is_a_fifo_with_wraparound(k, batches):
  rng = np.random.default_rng(k)
  state = init_queue((2, k, 3))
  ref = (np.zeros((2, k, 3)), 0, 0)
  for b in batches:
    keys = rng.normal(size=(2, b, 3)).astype(np.float32)
    state = enqueue(state, jnp.asarray(keys))
    ref = np_enqueue(*ref, keys)
    np.testing.assert_array_equal(np.asarray(state.queue), ref[0].astype(np.float32))
    assert (int(state.ptr), int(state.count)) == ref[1:]
    assert state.ptr.dtype == state.count.dtype == jnp.int32


@pytest.mark.parametrize("symmetric", [False, True])
def test_new_state_enqueues_the_normalised_keys_of_the_right_view(symmetric):
  qv, kv = _inputs(7, 4, 3)
  state = _filled(8, 3, 10, 8, q=2 if symmetric else 1)
  _, _, new = moco.moco_loss(qv, kv, state=state, queue_size=10, symmetric=symmetric)
  # Official: the keys of view 2 go to queue[0]; solo-learn also keeps view-1 keys in queue[1].
  keys = np_normalize(kv[[1, 0]] if symmetric else kv[1:2].astype(np.float64))
  ref = np_enqueue(np.asarray(state.queue), 8, 8, keys)
  np.testing.assert_allclose(np.asarray(new.queue), ref[0], rtol=1e-6, atol=1e-7)
  assert (int(new.ptr), int(new.count)) == (2, 10)     # 8 + 4 wraps around K = 10


def test_several_steps_match_numpy():
  rng = np.random.default_rng(9)
  state, ref = None, (np.zeros((2, 12, 4)), 0, 0)
  step = jax.jit(functools.partial(moco.moco_loss, queue_size=12, symmetric=True))
  for _ in range(5):
    qv, kv = rng.normal(size=(2, 2, 5, 4)).astype(np.float32)
    loss, _, state = step(qv, kv, state=state)
    np.testing.assert_allclose(float(loss), np_moco(qv, kv, ref[0], ref[2], symmetric=True),
                               rtol=1e-5)
    ref = np_enqueue(*ref, np_normalize(kv[[1, 0]].astype(np.float64)))
    np.testing.assert_allclose(np.asarray(state.queue), ref[0], atol=1e-6)


# ----------------------------------------------------------------------------
# 1 device == 8 devices: value, gradient and new state.
# ----------------------------------------------------------------------------


def _loss_fn(views, targets, queue, ptr, count, *, symmetric, axis_name=None, out="loss"):
  loss, aux, new = moco.moco_loss(views, targets, state=QueueState(queue, ptr, count),
                                  queue_size=queue.shape[1], symmetric=symmetric,
                                  axis_name=axis_name)
  return {"loss": loss, "aux": aux, "state": new}[out]


@pytest.mark.parametrize("symmetric", [False, True])
def test_distributed_equivalence_of_value_gradient_and_state(symmetric):
  qv, kv = _inputs(10, 16, 4)
  state = _filled(11, 4, 24, 16, q=2 if symmetric else 1)   # the global batch of 16 wraps K = 24
  args = (jnp.asarray(qv), jnp.asarray(kv), *state)
  fn = functools.partial(_loss_fn, symmetric=symmetric)
  testing.assert_distributed_equivalence(fn, args, batch_axes=(1, 1, None, None, None),
                                         argnums=(0, 1), rtol=1e-5, atol=1e-6)
  mesh = parallel.make_data_mesh()
  assert len(mesh.devices) == 8
  specs = (P(None, "data"), P(None, "data"), P(), P(), P())
  sharded = tuple(jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, specs))
  for out in ("state", "aux"):
    ref = jax.jit(functools.partial(fn, out=out))(*args)
    got_jit = jax.jit(functools.partial(fn, out=out))(*sharded)
    got_sm = jax.jit(jax.shard_map(functools.partial(fn, out=out, axis_name="data"), mesh=mesh,
                                   in_specs=specs, out_specs=P()))(*sharded)
    for got in (got_jit, got_sm):
      jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                           rtol=1e-6, atol=1e-7), got, ref)
  new = jax.jit(functools.partial(fn, out="state"))(*args)
  assert (int(new.ptr), int(new.count)) == (8, 24)


# ----------------------------------------------------------------------------
# Robustness, contract details, checkpointing.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["identical", "zeros"])
def test_collapsed_batches_give_finite_loss_and_grads_float32(case):
  x = jnp.zeros((2, 16, 8)) if case == "zeros" else jnp.ones((2, 16, 8))
  state = moco.moco_init_state(8, queue_size=32, symmetric=True)
  for _ in range(3):   # the queue fills with the same collapsed key
    (loss, (_, state)), grads = jax.value_and_grad(
        lambda a, b, s: (lambda o: (o[0], (o[1], o[2])))(
            moco.moco_loss(a, b, state=s, queue_size=32, symmetric=True)),
        argnums=(0, 1), has_aux=True)(x, x, state)
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in grads)
  if case == "identical":   # 1 positive and 32 equal negatives: log 33
    np.testing.assert_allclose(float(loss), np.log(33.0), rtol=1e-6)


def test_state_none_is_an_empty_queue_and_errors():
  qv, kv = _inputs(12, 4, 3)
  _, _, new = moco.moco_loss(qv, kv, queue_size=8)
  assert new.queue.shape == (1, 8, 3) and new.queue.dtype == jnp.float32
  assert (int(new.ptr), int(new.count)) == (4, 4)
  with pytest.raises(ValueError, match="expected \\(2, 8, 3\\)"):
    moco.moco_loss(qv, kv, state=new, queue_size=8, symmetric=True)
  with pytest.raises(ValueError, match="queue_size"):
    moco.moco_loss(qv, kv, state=new, queue_size=16)
  with pytest.raises(ValueError, match="temperature"):
    moco.moco_loss(qv, kv, temperature=0.0, queue_size=8)
  with pytest.raises(ValueError, match="same shape"):
    moco.moco_loss(qv, kv[..., :2], queue_size=8)


def test_queue_state_round_trips_through_the_checkpointer(tmp_path):
  qv, kv = _inputs(13, 8, 4)
  _, _, state = moco.moco_loss(qv, kv, queue_size=12, symmetric=True)
  got = checkpoint_round_trip({"moco": state}, str(tmp_path))["moco"]
  assert isinstance(got, QueueState)
  for a, b in zip(got, state):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The restored queue continues the run exactly.
  np.testing.assert_array_equal(
      np.asarray(moco.moco_loss(kv, qv, state=got, queue_size=12, symmetric=True)[0]),
      np.asarray(moco.moco_loss(kv, qv, state=state, queue_size=12, symmetric=True)[0]))
