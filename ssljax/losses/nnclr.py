"""NNCLR: contrast the nearest neighbour of one view (from a support set) with the other view.

Paper: Dwibedi, Aytar, Tompson, Sermanet & Zisserman, "With a Little Help from
My Friends: Nearest-Neighbor Contrastive Learning of Visual Representations",
ICCV 2021 (arXiv 2104.14548), Eq. 2 (with the predictor output in place of
z⁺) and Section 3; support set of 98,304 projections, τ = 0.1. The authors
released no code; the reference implementation followed here is
``vturrisi/solo-learn`` ``solo/methods/nnclr.py`` (``find_nn``,
``dequeue_and_enqueue``, ``training_step``) and ``solo/losses/nnclr.py``
(``nnclr_loss_func``). Formulas and conventions: ``docs/methods/nnclr.md``.

With u_v = z_v / ||z_v|| (projections), p_v the L2-normalised predictions,
Q the support set (valid slots only) and N the global batch::

  NN(u) = argmax_{s ∈ Q} u·s                          (cosine; no gradient)
  ℓ_v(i) = −log exp(NN(u_{v,i})·p_{w,i}/τ) / Σ_j exp(NN(u_{v,i})·p_{w,j}/τ),   w ≠ v
  L = ½ [(1/N) Σ_i ℓ_1(i) + (1/N) Σ_i ℓ_2(i)]

then the global batch of u_1 (view 1's normalised projections, stop-gradient)
is enqueued. The gradient reaches the network only through the predictions
(the neighbours come from the queue), as in solo-learn. With
``predictions=None`` the projections take their place (the paper's
no-predictor ablation).

Symmetrisation: solo-learn swaps the views (the mean of ℓ_1 and ℓ_2, above);
the paper's Section 3 instead adds the transposed softmax (normalising over
the neighbours NN(z_k) for a fixed z⁺_i). Default here: solo-learn's.

Before anything was enqueued (the first step from an empty queue) the
support set is empty and NN(u) = u itself (stop-gradient); solo-learn looks
neighbours up among random unit vectors then (see `ssljax.losses.queue`).

Distributed: the neighbour search is local (the queue is replicated); the
predictions are all-gathered (N × D per view, gradient-carrying, as
solo-learn's ``gather(p)``), each device scores its local anchors against all
N and finds its positives at ``local_row_offset``; u_1 is all-gathered
before enqueueing, so the new state equals the single-device one.
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

__all__ = ["nnclr_init_state", "nnclr_loss", "nearest_neighbour"]


def nnclr_init_state(dim: int, *, queue_size: int = 98304, dtype=jnp.float32,
                     key: Optional[jax.Array] = None) -> QueueState:
  """The empty NNCLR support set ``[queue_size, dim]`` (``key``: solo-learn's random start).

  Example:
    >>> nnclr_init_state(256, queue_size=4096).queue.shape
    (4096, 256)
  """
  return init_queue((queue_size, dim), dtype=dtype, key=key)


def nearest_neighbour(u: Array, state: QueueState) -> Tuple[Array, Array]:
  """Nearest valid support-set entry of each row of ``u`` ``[n, D]`` by dot product.

  Rows of ``u`` and the queue are unit vectors, so this is the cosine nearest
  neighbour (solo-learn ``find_nn``: ``argmax(z @ queue.T)``). With an empty
  queue every row is its own neighbour. No gradient flows.

  Returns:
    ``(nn, cos)``: the neighbours ``[n, D]`` and their similarity ``[n]``.

  Example:
    >>> s = enqueue(nnclr_init_state(2, queue_size=4), jnp.array([[1., 0.], [0., 1.]]))
    >>> nn, cos = nearest_neighbour(jnp.array([[0.6, 0.8]]), s)
    >>> nn.tolist(), round(float(cos[0]), 3)
    ([[0.0, 1.0]], 0.8)
  """
  u = jax.lax.stop_gradient(u)
  queue = jax.lax.stop_gradient(state.queue).astype(u.dtype)
  sims = jnp.where(valid_mask(state), u @ queue.T, -jnp.inf)      # [n, K]
  idx = jnp.argmax(sims, axis=1)
  empty = state.count == 0
  nn = jnp.where(empty, u, queue[idx])
  cos = jnp.where(empty, jnp.sum(u * u, axis=1), jnp.take_along_axis(sims, idx[:, None], 1)[:, 0])
  return nn, cos


def nnclr_loss(views: ViewsLike, predictions: Optional[ViewsLike] = None, *,
               state: Optional[QueueState] = None, queue_size: int = 98304,
               temperature: float = 0.1, axis_name: Optional[str] = None
               ) -> Tuple[Array, Dict[str, Array], QueueState]:
  """Symmetrised NNCLR loss with a support-set queue; returns ``(loss, aux, new_state)``.

  Pairing: the neighbour of ``views[0]`` (from the support set) is the
  anchor whose positive is ``predictions[1]`` (same row) and whose negatives
  are the other rows of ``predictions[1]``; and the neighbour of
  ``views[1]`` is contrasted with ``predictions[0]`` (solo-learn:
  ``nnclr_loss_func(nn1, p2) / 2 + nnclr_loss_func(nn2, p1) / 2``). Then
  ``views[0]`` (normalised, global batch) is enqueued.

  Defaults: the paper's support set 98,304 and τ = 0.1 (Section 4);
  solo-learn's CIFAR / ImageNet-100 recipes use 65536 and τ = 0.2.

  In the train step ``views`` is the ``projection`` and ``predictions`` the
  ``prediction`` (``config.model.predictor_dim`` = the projector size).

  Args:
    views: ``[V=2, n, D]`` projections z (feed the neighbour search and the
      queue), or ``(z1, z2)``; local shard with ``axis_name``.
    predictions: ``[V=2, n, D]`` predictor outputs p, same layout; ``None``:
      use ``views`` (no predictor).
    state: `QueueState` from `nnclr_init_state` or the last step
      (replicated); ``None``: an empty support set of ``queue_size``.
    queue_size: support-set size K; must match ``state``.
    temperature: τ > 0.
    axis_name: batch mesh axis inside ``shard_map``.
  Returns:
    ``(loss, aux, new_state)``; aux scalars ``'positive_accuracy'`` (fraction
    of anchors whose own row scores highest), ``'nn_cosine'`` (mean cos(u,
    NN(u))) and ``'queue_fill'`` (valid fraction before the update).

  Example:
    >>> z, p = jax.random.normal(jax.random.key(0), (2, 2, 8, 16))   # each [V=2, N=8, D=16]
    >>> loss, aux, state = nnclr_loss(z, p, queue_size=64)
    >>> loss, aux, state = nnclr_loss(z, p, state=state, queue_size=64)
    >>> int(state.count), state.queue.shape, sorted(aux)
    (16, (64, 16), ['nn_cosine', 'positive_accuracy', 'queue_fill'])
  """
  z = as_views(views, kernel="nnclr_loss", num_views=2, name="views", axis_name=axis_name)
  p = z if predictions is None else as_views(predictions, kernel="nnclr_loss", num_views=2,
                                             name="predictions", axis_name=axis_name)
  same_layout(z, p, kernel="nnclr_loss", names=("views", "predictions"))
  if z.shape != p.shape:
    raise ValueError(f"nnclr_loss: views {z.shape} and predictions {p.shape} must have the same "
                     "shape [2, N, D]: the predictor output size must equal the projector's.")
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"nnclr_loss: temperature must be > 0, got {temperature} (NNCLR: 0.1).")
  if state is None:
    state = nnclr_init_state(z.shape[-1], queue_size=queue_size,
                             dtype=jnp.promote_types(z.dtype, jnp.float32))
  if state.queue.shape != (queue_size, z.shape[-1]):
    raise ValueError(f"nnclr_loss: state.queue has shape {state.queue.shape}, expected "
                     f"{(queue_size, z.shape[-1])}; build it with nnclr_init_state(D, "
                     "queue_size=...).")
  dtype = jnp.result_type(z.dtype, p.dtype, state.queue.dtype)
  u = jax.lax.stop_gradient(l2_normalize(z)).astype(dtype)        # [2, n, D]
  p = l2_normalize(p).astype(dtype)
  n_local = u.shape[1]
  p_all = parallel.all_gather_batch(p, axis_name, axis=1)          # [2, N, D]
  n_global = p_all.shape[1]
  rows = parallel.local_row_offset(n_local, axis_name) + jnp.arange(n_local)

  loss = hits = nn_cos = 0.0
  for v, w in ((0, 1), (1, 0)):
    nn, cos = nearest_neighbour(u[v], state)
    logits = nn @ p_all[w].T / temperature                          # [n, N]
    pos = jnp.take_along_axis(logits, rows[:, None], axis=1)[:, 0]
    per_row = jax.nn.logsumexp(logits, axis=1) - pos
    hit = jnp.argmax(jax.lax.stop_gradient(logits), axis=1) == rows
    loss = loss + parallel.batch_sum(per_row, axis_name) / (2 * n_global)
    hits = hits + parallel.batch_sum(hit.astype(dtype), axis_name) / (2 * n_global)
    nn_cos = nn_cos + parallel.batch_sum(cos, axis_name) / (2 * n_global)

  new_state = enqueue(state, gather_keys(u[0], axis_name, axis=0))
  aux = {"positive_accuracy": hits, "nn_cosine": nn_cos,
         "queue_fill": state.count.astype(dtype) / queue_size}
  return loss, aux, new_state
