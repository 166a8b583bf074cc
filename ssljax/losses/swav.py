"""SwAV: swapped prediction of online cluster assignments (Sinkhorn-Knopp codes).

Paper: Caron, Misra, Mairal, Goyal, Bojanowski and Joulin, "Unsupervised
Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS 2020
(arXiv 2006.09882), Eqs. 1-3 and Sec. 3.1-3.2. Official code:
``facebookresearch/swav`` ``main_swav.py`` (``train``, ``distributed_sinkhorn``).
Formulas, conventions and defaults: ``docs/methods/swav.md``.

With ``z_{v,n}`` the L2-normalised projection of crop ``v`` of example ``n``
and ``C ∈ R^{K×D}`` the L2-normalised prototypes::

  s_{v,n}  = C z_{v,n}                                         (scores, [K])
  q_i      = Sinkhorn(s_i / ε)  over the global batch          (codes, crop i global)
  ℓ(i, v)  = −1/N Σ_n Σ_k q_{i,n,k} log softmax(s_{v,n} / τ)_k
  L        = 1/G Σ_{i<G} 1/(V−1) Σ_{v≠i} ℓ(i, v)

where the first ``G = num_global_views`` crops are the global crops the codes
are computed on (official ``crops_for_assign = [0, 1]``) and V counts all crops
(global + local, ``nmb_crops = [2, 6]``). Codes are stop-gradient.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize


class SwAVState(NamedTuple):
  """The feature queue of `swav_loss` (a pytree; replicated across devices).

  Attributes:
    queue: ``[G, Q, D]`` L2-normalised projections of the G global crops of
      the last Q examples, newest first (official ``queue[i, :bs]`` insertion).
    count: ``[]`` int32 number of filled rows (capped at Q); the queue joins
      the Sinkhorn problem once it is full, as the official
      ``use_the_queue`` test of the last row.
  """
  queue: jax.Array
  count: jax.Array


def swav_init_state(queue_size: int, dim: int, *, num_global_views: int = 2,
                    dtype=jnp.float32) -> SwAVState:
  """An empty queue of ``queue_size`` rows of ``dim`` features per global crop.

  Example:
    >>> state = swav_init_state(64, 8)
    >>> state.queue.shape, int(state.count)
    ((2, 64, 8), 0)
  """
  if queue_size <= 0:
    raise ValueError(f"swav_init_state: queue_size must be positive, got {queue_size}; "
                     "without a queue swav_loss takes state=None.")
  return SwAVState(jnp.zeros((num_global_views, queue_size, dim), dtype),
                   jnp.zeros((), jnp.int32))


def _compute_dtype(dtype) -> jnp.dtype:
  # Sinkhorn's exp(s / 0.05) and its normalisations need at least float32.
  return jnp.promote_types(dtype, jnp.float32)


def _sinkhorn(scores: jax.Array, extra: Optional[jax.Array], *, epsilon, num_iters: int,
              axis_name: Optional[str]) -> jax.Array:
  """Codes of the (sharded) rows ``scores`` [n, K], with optional replicated rows ``extra`` [R, K].

  The Sinkhorn problem is the global batch (``psum`` over ``axis_name``) plus
  the ``extra`` rows counted once (the queue is replicated, not sharded).
  """
  dtype = _compute_dtype(scores.dtype)
  s = lax.stop_gradient(scores).astype(dtype)
  r = None if extra is None else lax.stop_gradient(extra).astype(dtype)
  k = s.shape[-1]
  # Shift by the global max: exp cannot overflow; the normalisation removes it.
  m = jnp.max(s)
  if axis_name is not None:
    m = lax.pmax(m, axis_name)
  if r is not None:
    m = jnp.maximum(m, jnp.max(r))
  rows = [jnp.exp((s - m) / epsilon)] + ([] if r is None else [jnp.exp((r - m) / epsilon)])
  b = parallel.global_batch_size(s.shape[0], axis_name) + (0 if r is None else r.shape[0])

  def total(fn):
    # fn(rows) reduced over the global batch: psum of the sharded part, plus the replicated part.
    out = parallel.batch_sum(fn(rows[0])[None], axis_name)
    return out if r is None else out + fn(rows[1])

  t = total(jnp.sum)
  rows = [x / t for x in rows]
  for _ in range(num_iters):
    per_prototype = total(lambda x: jnp.sum(x, axis=0))            # [K]: must be 1/K
    rows = [x / per_prototype / k for x in rows]
    rows = [x / jnp.sum(x, axis=1, keepdims=True) / b for x in rows]  # per sample: 1/B
  return rows[0] * b


def sinkhorn(scores: jax.Array, *, epsilon: float = 0.05, num_iters: int = 3,
             axis_name: Optional[str] = None) -> jax.Array:
  """SwAV's Sinkhorn-Knopp codes of a batch of prototype scores (stop-gradient).

  Transcribes official ``distributed_sinkhorn`` on the global batch, rows =
  samples (the code's Q is the transpose)::

    Q  = exp(S / ε);  Q /= ΣQ                          (all-reduced)
    repeat num_iters: Q_{:,k} /= Σ_n Q_{n,k} · K       (prototype sums, all-reduced)
                      Q_{n,:} /= Σ_k Q_{n,k} · B       (sample sums, local)
    return B · Q

  so every row sums to 1 and every prototype receives about B/K of the mass
  (exactly only as num_iters → ∞). Computed in at least float32 whatever the
  input dtype (bf16 scores give float32 codes); ``exp`` is shifted by the
  global maximum score, which the first normalisation cancels.

  Args:
    scores: ``[n, K]`` scores ``z · c_k`` of n examples (local rows with
      ``axis_name``), any float dtype.
    epsilon: entropic regularisation ε (official 0.05).
    num_iters: Sinkhorn iterations (official ``sinkhorn_iterations`` 3).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``[n, K]`` codes in the promoted dtype (at least float32), rows summing to 1.

  Example:
    >>> s = jax.random.normal(jax.random.key(0), (16, 4)).astype(jnp.bfloat16)
    >>> q = sinkhorn(s)
    >>> q.dtype, [round(float(x), 4) for x in q.sum(1)[:2]]
    (dtype('float32'), [1.0, 1.0])
  """
  if scores.ndim != 2:
    raise ValueError(f"sinkhorn: scores must be [N, K] (examples, prototypes), got shape "
                     f"{scores.shape}")
  return _sinkhorn(scores, None, epsilon=epsilon, num_iters=num_iters, axis_name=axis_name)


def _gather_replicated(x: jax.Array, n_global: int, axis_name: Optional[str]) -> jax.Array:
  """[G, n, D] local rows -> [G, N, D] global rows, replicated (the queue is device-invariant).

  A psum of each shard placed at its offset in zeros: exact (one non-zero
  addend per entry) and, unlike ``all_gather``, typed as replicated under
  ``shard_map``.
  """
  if axis_name is None:
    return x
  full = jnp.zeros((x.shape[0], n_global, x.shape[2]), x.dtype)
  offset = parallel.local_row_offset(x.shape[1], axis_name)
  return lax.psum(lax.dynamic_update_slice_in_dim(full, x, offset, axis=1), axis_name)


def _check_state(state: SwAVState, g: int, queue_size: int, d: int) -> None:
  if state.queue.shape != (g, queue_size, d):
    raise ValueError(f"swav_loss: state.queue has shape {state.queue.shape}, expected "
                     f"[num_global_views={g}, queue_size={queue_size}, D={d}]; build it with "
                     f"swav_init_state({queue_size}, {d}, num_global_views={g}).")


def swav_loss(
    views: ViewsLike,
    *,
    prototypes: jax.Array,
    state: Optional[SwAVState] = None,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iters: int = 3,
    num_global_views: int = 2,
    queue_size: int = 0,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array], Optional[SwAVState]]:
  """SwAV swapped-prediction loss of V crops (G global + V − G local) on the global batch.

  ``L = 1/G Σ_{i<G} 1/(V−1) Σ_{v≠i} CE(q_i, softmax(z_v Cᵀ / τ))`` with codes
  ``q_i = sinkhorn(z_i Cᵀ)`` (`sinkhorn`, stop-gradient) of the global crops,
  averaged as official ``main_swav.py``: the batch mean, then over the V − 1
  predicting crops, then over the G coded crops. Views and prototypes are
  L2-normalised here (official: ``normalize=True`` model head and prototypes
  re-normalised before each step; here the gradient flows through the
  normalisation, see ``docs/methods/swav.md``).

  Queue (``queue_size > 0``, official ``queue_length``, e.g. 3840 for batch
  256): the features of the global crops of the last ``queue_size`` examples,
  scored against the current prototypes, join the Sinkhorn problem of each
  global crop once the queue is full; the new batch is then enqueued (all
  devices' rows, so the replicated queue stays identical). The official code
  starts it at epoch 15 (``epoch_queue_starts``): the train-step term does that
  with ``queue_start_steps``.

  Args:
    views: ``[V, n, D]`` projections of all crops, the G global crops first,
      row-aligned; or a sequence of V arrays ``[n, D]``. Crops of different
      resolutions share D (pooled features).
    prototypes: ``[K, D]`` prototype vectors (a learnable parameter; official
      K = 3000 on ImageNet).
    state: `SwAVState` queue when ``queue_size > 0`` (``None``: an empty one);
      must be ``None`` without a queue.
    temperature: τ of the predicted softmax (official 0.1).
    epsilon: Sinkhorn ε (official 0.05).
    sinkhorn_iters: Sinkhorn iterations (official 3).
    num_global_views: G, the crops codes are computed on (official
      ``crops_for_assign = [0, 1]``).
    queue_size: Q, rows of the queue (0: no queue, the official default).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux, new_state)``: ``loss`` []; ``aux`` with ``code_entropy``
    (mean entropy of the codes, nats) and ``queue_used`` (1.0 when the queue
    joined the codes); ``new_state`` the updated queue, or ``None`` without one.

  Example:
    >>> views = jax.random.normal(jax.random.key(0), (4, 32, 16))   # 2 global + 2 local crops
    >>> prototypes = jax.random.normal(jax.random.key(1), (10, 16))
    >>> loss, aux, _ = swav_loss(views, prototypes=prototypes)
    >>> loss.shape, sorted(aux)
    ((), ['code_entropy', 'queue_used'])
  """
  z = as_views(views, kernel="swav_loss", min_views=2, axis_name=axis_name)
  v, n, d = z.shape
  g = num_global_views
  if not 1 <= g <= v:
    raise ValueError(f"swav_loss: num_global_views={g} must be in [1, V={v}] (views [V, N, D] "
                     "with the global crops first)")
  if prototypes.ndim != 2 or prototypes.shape[1] != d:
    raise ValueError(f"swav_loss: prototypes must be [K, D={d}], got shape {prototypes.shape}")
  if queue_size < 0 or (queue_size == 0 and state is not None):
    raise ValueError(f"swav_loss: queue_size={queue_size} with state={type(state).__name__}; "
                     "a state is the queue of queue_size > 0 rows")
  dtype = _compute_dtype(jnp.result_type(z.dtype, prototypes.dtype))
  z = l2_normalize(z.astype(dtype))
  c = l2_normalize(prototypes.astype(dtype))
  scores = jnp.einsum("vnd,kd->vnk", z, c)
  log_p = jax.nn.log_softmax(scores / temperature, axis=-1)  # [V, n, K]

  use_queue = jnp.zeros((), bool)
  if queue_size:
    if state is None:
      state = swav_init_state(queue_size, d, num_global_views=g, dtype=dtype)
    _check_state(state, g, queue_size, d)
    use_queue = state.count >= queue_size
    queue_scores = jnp.einsum("gqd,kd->gqk", state.queue.astype(dtype), c)
  codes = []
  for i in range(g):
    q = _sinkhorn(scores[i], None, epsilon=epsilon, num_iters=sinkhorn_iters,
                  axis_name=axis_name)
    if queue_size:
      q_queue = _sinkhorn(scores[i], queue_scores[i], epsilon=epsilon,
                          num_iters=sinkhorn_iters, axis_name=axis_name)
      q = jnp.where(use_queue, q_queue, q)
    codes.append(q)
  codes = jnp.stack(codes)                                   # [G, n, K]

  n_global = parallel.global_batch_size(n, axis_name)
  # ce[i, v] = −1/N Σ_n Σ_k q_{i,n,k} log p_{v,n,k}
  ce = -parallel.batch_sum(jnp.einsum("gnk,vnk->ngv", codes, log_p), axis_name) / n_global
  others = 1.0 - jnp.eye(g, v, dtype=dtype)                  # v ≠ i
  loss = jnp.mean(jnp.sum(ce * others, axis=1) / (v - 1))
  entropy = -parallel.batch_sum(
      jnp.sum(codes * jnp.log(jnp.maximum(codes, jnp.finfo(dtype).tiny)), -1), axis_name,
      axis=1) / n_global
  aux = {"code_entropy": jnp.mean(entropy), "queue_used": use_queue.astype(dtype)}

  new_state = None
  if queue_size:
    fresh = _gather_replicated(lax.stop_gradient(z[:g]), n_global, axis_name)  # [G, N, D]
    queue = jnp.concatenate([fresh.astype(state.queue.dtype), state.queue], axis=1)
    new_state = SwAVState(queue[:, :queue_size],
                          jnp.minimum(state.count + n_global, queue_size).astype(jnp.int32))
  return loss, aux, new_state
