"""MoCo v2: InfoNCE of online queries against momentum keys and a FIFO queue of past keys.

Paper: He, Fan, Wu, Xie & Girshick, "Momentum Contrast for Unsupervised
Visual Representation Learning", CVPR 2020 (arXiv 1911.05722), Eq. 1 and
Algorithm 1; MoCo v2: Chen, Fan, Girshick & He, "Improved Baselines with
Momentum Contrastive Learning", arXiv 2003.04297 (MLP head, τ = 0.2, blur,
cosine lr). Official code: ``facebookresearch/moco`` ``moco/builder.py``
(``MoCo.forward``, ``_dequeue_and_enqueue``; K = 65536, m = 0.999) and
``main_moco.py`` (``--moco-t 0.2`` for v2). Symmetrised variant:
``vturrisi/solo-learn`` ``solo/methods/mocov2plus.py`` and
``solo/losses/moco.py``. Formulas, conventions and the train-step wiring:
``docs/methods/moco.md``.

Per direction (query view a, key view b, queue Q of past b-keys, all rows
L2-normalised, τ the temperature, N the global batch)::

  ℓ_i = −log exp(q_i·k_i/τ) / [exp(q_i·k_i/τ) + Σ_{j valid} exp(q_i·Q_j/τ)]
  L   = (1/N) Σ_i ℓ_i

then the global batch of keys ``k`` is enqueued (stop-gradient, FIFO).
``symmetric=False`` (default, official MoCo v2): one direction, queries of
view 1 against keys of view 2. ``symmetric=True`` (solo-learn's MoCo v2+):
the mean of both directions, with one queue per key view.

The queue is the loss state (`ssljax.losses.queue.QueueState`); it starts
empty and masks unwritten slots (the official code starts from random unit
vectors; see `ssljax.losses.queue`).

Distributed: the positives are same-row keys (local); the queue is
replicated, so the logits need no gather; the mean uses the global N. The
keys are all-gathered before enqueueing, so every device writes the same
global batch in the same order (the official ``concat_all_gather``) and the
new state equals the single-device one.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel
from ssljax.losses.queue import QueueState, enqueue, gather_keys, init_queue, valid_mask
from ssljax.losses.views import ViewsLike, as_views, same_layout
from ssljax.ops import l2_normalize

Array = jax.Array

__all__ = ["moco_init_state", "moco_loss"]


def moco_init_state(dim: int, *, queue_size: int = 65536, symmetric: bool = False,
                    dtype=jnp.float32, key: Optional[jax.Array] = None) -> QueueState:
  """The empty MoCo queue ``[1 + symmetric, queue_size, dim]`` (``key``: official random start).

  Args:
    dim: key dimension D (the projector output).
    queue_size: K (official 65536; solo-learn CIFAR 32768).
    symmetric: one queue per key view (see `moco_loss`).
    dtype: dtype of the stored keys.
    key: PRNG key for the official start (random unit vectors, all slots
      valid); ``None`` starts empty.
  Returns:
    `QueueState`.

  Example:
    >>> s = moco_init_state(128, queue_size=1024, symmetric=True)
    >>> s.queue.shape, int(s.count)
    ((2, 1024, 128), 0)
  """
  return init_queue((2 if symmetric else 1, queue_size, dim), dtype=dtype, key=key)


def _direction(q: Array, k: Array, queue: Array, valid: Array, temperature, axis_name):
  """Sum over local rows of ℓ_i, #hits (positive beats every negative), Σ cos(q, k)."""
  pos = jnp.sum(q * k, axis=-1)                                   # [n]
  neg = jnp.where(valid, q @ queue.T, -jnp.inf)                  # [n, K]
  logits = jnp.concatenate([pos[:, None], neg], axis=1) / temperature
  per_row = jax.nn.logsumexp(logits, axis=1) - pos / temperature
  hit = (pos > jnp.max(neg, axis=1)).astype(q.dtype)
  sg = jax.lax.stop_gradient
  return (parallel.batch_sum(per_row, axis_name), parallel.batch_sum(sg(hit), axis_name),
          parallel.batch_sum(sg(pos), axis_name))


def moco_loss(views: ViewsLike, targets: ViewsLike, *, state: Optional[QueueState] = None,
              queue_size: int = 65536, temperature: float = 0.2, symmetric: bool = False,
              axis_name: Optional[str] = None) -> Tuple[Array, Dict[str, Array], QueueState]:
  """MoCo InfoNCE with a key queue; returns ``(loss, aux, new_state)``.

  Pairing: direction 1 contrasts ``views[0]`` (queries) with ``targets[1]``
  (positive keys) and ``state.queue[0]`` (past ``targets[1]`` keys);
  with ``symmetric=True`` direction 2 contrasts ``views[1]`` with
  ``targets[0]`` and ``state.queue[1]``, and the loss is the mean of the
  two (solo-learn ``mocov2plus.py``: ``(loss(q1, k2, queue[1]) + loss(q2,
  k1, queue[0])) / 2``). After the loss, ``targets[1]`` (and ``targets[0]``)
  of the global batch are enqueued. Both inputs are L2-normalised here; the
  keys carry no gradient.

  Defaults: official MoCo v2 (``moco/builder.py``, ``main_moco.py``): one
  direction, K = 65536, τ = 0.2. solo-learn's CIFAR recipe: ``symmetric=True``,
  K = 32768, τ = 0.2.

  In the train step ``views`` is the online ``projection`` and ``targets``
  the EMA ``target_projection`` (the momentum encoder, ``config.model.use_target``;
  MoCo's m is ``config.model.target_ema``, see ``docs/methods/moco.md`` for the
  schedule).

  Args:
    views: ``[V=2, n, D]`` online query projections (or ``(q1, q2)``); local
      shard with ``axis_name``.
    targets: ``[V=2, n, D]`` momentum-encoder key projections, same layout.
    state: `QueueState` from `moco_init_state` or the last step (replicated);
      ``None``: an empty queue of ``queue_size`` (float32 or the inputs'
      wider dtype).
    queue_size: K; must match ``state``.
    temperature: τ > 0.
    symmetric: both directions (solo-learn) instead of one (official).
    axis_name: batch mesh axis inside ``shard_map``.
  Returns:
    ``(loss, aux, new_state)``: scalar loss; aux scalars ``'positive_accuracy'``
    (fraction of queries whose key beats every queued negative),
    ``'positive_cosine'`` (mean cos(q, k)) and ``'queue_fill'`` (valid
    fraction of the queue before the update); the new `QueueState`.

  Example:
    >>> q, k = jax.random.normal(jax.random.key(0), (2, 2, 8, 16))   # each [V=2, N=8, D=16]
    >>> loss, aux, state = moco_loss(q, k, queue_size=32)            # empty queue: loss 0
    >>> loss, aux, state = moco_loss(q, k, state=state, queue_size=32)
    >>> round(float(aux["queue_fill"]), 2), int(state.ptr), state.queue.shape
    (0.25, 16, (1, 32, 16))
  """
  q = as_views(views, kernel="moco_loss", num_views=2, name="views", axis_name=axis_name)
  k = as_views(targets, kernel="moco_loss", num_views=2, name="targets", axis_name=axis_name)
  same_layout(q, k, kernel="moco_loss", names=("views", "targets"))
  if q.shape != k.shape:
    raise ValueError(f"moco_loss: views {q.shape} and targets {k.shape} must have the same "
                     "shape [2, N, D] (online and momentum projectors share the output size).")
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"moco_loss: temperature must be > 0, got {temperature} (MoCo v2: 0.2).")
  num_queues = 2 if symmetric else 1
  if state is None:
    state = moco_init_state(q.shape[-1], queue_size=queue_size, symmetric=symmetric,
                            dtype=jnp.promote_types(q.dtype, jnp.float32))
  expected = (num_queues, queue_size, q.shape[-1])
  if state.queue.shape != expected:
    raise ValueError(f"moco_loss: state.queue has shape {state.queue.shape}, expected {expected} "
                     f"(symmetric={symmetric}, queue_size={queue_size}, D={q.shape[-1]}); build "
                     "it with moco_init_state(D, queue_size=..., symmetric=...).")
  dtype = jnp.result_type(q.dtype, state.queue.dtype)
  q = l2_normalize(q).astype(dtype)
  k = jax.lax.stop_gradient(l2_normalize(k)).astype(dtype)
  queue = jax.lax.stop_gradient(state.queue).astype(dtype)
  valid = valid_mask(state)
  n_global = parallel.global_batch_size(q.shape[1], axis_name)

  pairs = ((0, 1), (1, 0))[:num_queues]                          # (query view, key view)
  sums = [_direction(q[a], k[b], queue[i], valid, temperature, axis_name)
          for i, (a, b) in enumerate(pairs)]
  loss_sum, hits, cos = (sum(s[j] for s in sums) / (num_queues * n_global) for j in range(3))

  keys = gather_keys(jnp.stack([k[b] for _, b in pairs]), axis_name, axis=1)   # [Q, N, D]
  new_state = enqueue(state, keys)
  aux = {"positive_accuracy": hits, "positive_cosine": cos,
         "queue_fill": state.count.astype(dtype) / queue_size}
  return loss_sum, aux, new_state
