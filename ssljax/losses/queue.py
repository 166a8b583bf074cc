"""A FIFO queue of past embeddings carried as loss state (MoCo's dictionary, NNCLR's support set).

The queue is a plain pytree of arrays, so it lives in the train state
(``TrainState.loss_state``) and is checkpointed like any other array:

* ``queue``: ``[..., K, D]`` the K most recent entries (leading axes: one
  queue per direction, e.g. MoCo's symmetrised loss keeps one per view);
* ``ptr``: int32 scalar, the slot the next entry is written to;
* ``count``: int32 scalar, the number of valid entries (saturates at K).

It starts empty (zeros, ``count = 0``) and the kernels mask the slots that
were never written, instead of the official codes' random unit vectors
(``torch.randn`` + ``normalize`` in ``facebookresearch/moco``
``moco/builder.py`` and ``vturrisi/solo-learn`` ``solo/methods/nnclr.py``):
no PRNG key is needed, and no loss term ever contrasts against noise. After
K / B steps (B = global keys per step) the two are identical.
`init_queue(..., key=...)` gives the official random start.

Enqueueing takes the *global* batch of keys: inside ``jax.shard_map`` they
are all-gathered first (`gather_keys`), so every device holds the same queue.
Unlike the official ``_dequeue_and_enqueue`` (``assert K % batch_size == 0``)
any B works: writes wrap around, and a batch larger than K keeps its last K
rows.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from ssljax.ops import l2_normalize

Array = jax.Array

__all__ = ["QueueState", "init_queue", "enqueue", "gather_keys", "valid_mask"]


class QueueState(NamedTuple):
  """FIFO queue of embeddings (replicated across devices, no gradient).

  Attributes:
    queue: [..., K, D] entries; slot ``j`` is valid iff ``j < count``.
    ptr: int32 [] next slot to write.
    count: int32 [] number of valid entries, ``min(#enqueued, K)``.
  """
  queue: Array
  ptr: Array
  count: Array


def init_queue(shape: Sequence[int], *, dtype=jnp.float32,
               key: Optional[jax.Array] = None) -> QueueState:
  """An empty queue ``[..., K, D]``, or with ``key`` the official start (full of random unit vectors).

  Example:
    >>> s = init_queue((4, 3))
    >>> s.queue.shape, int(s.ptr), int(s.count)
    ((4, 3), 0, 0)
    >>> int(init_queue((4, 3), key=jax.random.key(0)).count)
    4
  """
  shape = tuple(int(s) for s in shape)
  if len(shape) < 2 or shape[-2] < 1 or shape[-1] < 1:
    raise ValueError(f"init_queue needs a shape [..., K, D] with K, D >= 1; got {shape}.")
  zero = jnp.zeros((), jnp.int32)
  if key is None:
    return QueueState(jnp.zeros(shape, dtype), zero, zero)
  queue = l2_normalize(jax.random.normal(key, shape, jnp.float32)).astype(dtype)
  return QueueState(queue, zero, jnp.asarray(shape[-2], jnp.int32))


def valid_mask(state: QueueState) -> Array:
  """[K] bool: the slots that hold an enqueued (or official random) entry."""
  return jnp.arange(state.queue.shape[-2]) < state.count


def gather_keys(keys: Array, axis_name: Optional[str], axis: int) -> Array:
  """The global batch of (stop-gradient) keys along ``axis``, replicated on every device.

  ``all_gather(..., to='invarying')`` marks the result as identical on every
  device, so the new queue can leave ``shard_map`` replicated (``P()``).
  """
  keys = jax.lax.stop_gradient(keys)
  if axis_name is None:
    return keys
  return jax.lax.all_gather(keys, axis_name, axis=axis, tiled=True, to="invarying")


def enqueue(state: QueueState, keys: Array) -> QueueState:
  """Writes ``keys`` ``[..., B, D]`` (global batch) at ``ptr``, oldest first out.

  Row b goes to slot ``(ptr + b) mod K``; ``ptr`` advances by B (mod K) and
  ``count`` by B (capped at K). With B > K only the last K rows are written
  (the earlier ones would be overwritten within the same step).

  Example:
    >>> s = init_queue((3, 1))
    >>> s = enqueue(s, jnp.array([[1.], [2.]]))
    >>> s = enqueue(s, jnp.array([[3.], [4.]]))         # wraps: slot 0 is overwritten
    >>> s.queue.ravel().tolist(), int(s.ptr), int(s.count)
    ([4.0, 2.0, 3.0], 1, 3)
  """
  k = state.queue.shape[-2]
  if keys.shape[:-2] != state.queue.shape[:-2] or keys.shape[-1] != state.queue.shape[-1]:
    raise ValueError(f"enqueue: keys {keys.shape} do not fit the queue {state.queue.shape} "
                     "([..., B, D] vs [..., K, D]).")
  b = keys.shape[-2]
  skip = max(b - k, 0)
  keys = jax.lax.stop_gradient(keys[..., skip:, :]).astype(state.queue.dtype)
  slots = (state.ptr + skip + jnp.arange(b - skip)) % k
  queue = state.queue.at[..., slots, :].set(keys)
  ptr = ((state.ptr + b) % k).astype(jnp.int32)
  count = jnp.minimum(state.count + b, k).astype(jnp.int32)
  return QueueState(queue, ptr, count)
