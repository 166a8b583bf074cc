"""SimCLR NT-Xent / InfoNCE loss, its M-view (SupCon-style) form and the InfoNCE MI bound.

Paper: Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML 2020 (arXiv 2002.05709), Eq. 1 and
Algorithm 1. Official code: ``google-research/simclr`` ``tf2/objective.py``
(``add_contrastive_loss``) and ``tf2/run.py`` (flags).

Paper vs official code (both read; the defaults follow the code):

* **Temperature.** ``tf2/run.py`` defines ``--temperature`` with default 0.1,
  the value used for the ImageNet results; default here: ``temperature=0.1``.
  (CIFAR-10 runs in the paper use 0.5, as does ``Haoqing-Wang/InfoCL``.)
* **Symmetrisation.** Algorithm 1 averages the per-anchor loss over all 2N
  anchors. The official code computes one cross-entropy per view
  (``loss_a`` with view-1 anchors, ``loss_b`` with view-2 anchors) and returns
  ``mean(loss_a + loss_b)``, i.e. the *sum* over the two views of the mean over
  the batch: twice Algorithm 1. Default here: ``view_reduction='sum'`` (official
  code); ``view_reduction='mean'`` gives Algorithm 1 (and solo-learn, lightly,
  ``optax.losses.ntxent``). The factor 2 only rescales the gradient, which
  matters for SGD/LARS learning rates and weight-decay ratios.
* **Normalisation.** Embeddings are L2-normalised inside the loss
  (``hidden_norm=True`` in the code), with ``x / sqrt(max(||x||^2, 1e-12))`` as
  ``tf.math.l2_normalize``.

Distributed use: the train step calls these kernels with ``axis_name=None`` on
the global batch under ``jit`` (the partitioner all-gathers). Inside
``jax.shard_map`` pass ``axis_name``: each device computes the logits of its
local anchors against the all-gathered batch (N×D traffic per view; there are
no D×D sufficient statistics for a softmax over pairs), locates its positives
and its own rows with ``local_row_offset``, and the mean uses the global N.
This mirrors the TPU path of the official code (``tpu_cross_replica_concat``
plus ``labels_idx = range(n) + replica_id * n``).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel

_VIEW_REDUCTIONS = ("sum", "mean")


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  # Same epsilon convention as tf.math.l2_normalize (on the squared norm).
  sq = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, eps))


def _check_temperature(temperature) -> None:
  # Only concrete Python numbers can be checked without breaking jit/vmap.
  if isinstance(temperature, (int, float)) and not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature}; SimCLR uses 0.1 "
                     "(ImageNet) or 0.5 (CIFAR).")


def _check_view_reduction(view_reduction: str) -> None:
  if view_reduction not in _VIEW_REDUCTIONS:
    raise ValueError(f"view_reduction={view_reduction!r} is not one of {_VIEW_REDUCTIONS}: "
                     "'sum' sums the per-view mean losses (official SimCLR code), "
                     "'mean' averages over all anchors (SimCLR paper, Algorithm 1).")


def multiview_nt_xent_loss(
    z: jax.Array,
    *,
    temperature: float | jax.Array = 0.1,
    view_reduction: str = "sum",
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """NT-Xent for V ≥ 2 views: every other view of the same image is a positive.

  With ``u_{v,i} = z_{v,i} / ||z_{v,i}||`` and ``s(a, b) = u_a·u_b / τ``, the loss
  of anchor ``(v, i)`` averages the log-likelihood over its ``V−1`` positives
  (the SupCon "L_out" form, Khosla et al. 2020, Eq. 2, with labels = image
  index), against all ``V·N − 1`` other embeddings as candidates::

    ℓ(v, i) = −1/(V−1) Σ_{w≠v} log [ exp s((v,i),(w,i))
                                      / Σ_{(w',j)≠(v,i)} exp s((v,i),(w',j)) ]

  Reduction over anchors (``N`` = global batch size):

  * ``'sum'``  (default, official SimCLR code): ``L = Σ_v (1/N) Σ_i ℓ(v, i)``;
  * ``'mean'`` (SimCLR Algorithm 1): ``L = 1/(V·N) Σ_{v,i} ℓ(v, i)``.

  For V = 2 each anchor has one positive and 2N−2 negatives, and this is
  exactly :func:`nt_xent_loss`. Note that ``optax.losses.ntxent`` treats
  multiple positives differently (one softmax per positive pair with the *other*
  positives removed from the denominator); for V = 2 the two agree with
  ``view_reduction='mean'``.

  Args:
    z: ``[V, N, D]`` embeddings, ``z[v, i]`` is view ``v`` of image ``i`` (the
      local shard of the batch axis 1 when ``axis_name`` is given).
    temperature: softmax temperature τ > 0 (scalar; may be traced).
    view_reduction: ``'sum'`` or ``'mean'``, see above.
    axis_name: mesh axis of the batch inside ``shard_map``; ``None`` on the
      global batch.

  Returns:
    ``(loss, aux)``; ``aux`` holds ``'mean_anchor_loss'`` (mean of ℓ over all
    anchors, nats), ``'positive_accuracy'`` (fraction of anchors whose most
    similar candidate is a positive) and ``'positive_cosine'`` (mean cosine of
    positive pairs). ``aux`` carries no gradient.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (3, 8, 16))
    >>> loss, aux = multiview_nt_xent_loss(z, temperature=0.5)
  """
  if z.ndim != 3:
    raise ValueError(f"z must have shape [V, N, D] (views, batch, features), got shape {z.shape}; "
                     "stack the views with jnp.stack([z1, z2, ...]).")
  if not jnp.issubdtype(z.dtype, jnp.floating):
    raise ValueError(f"z must be a floating array, got dtype {z.dtype}.")
  num_views, n_local, _ = z.shape
  if num_views < 2:
    raise ValueError(f"need at least 2 views for a contrastive loss, got V={num_views}.")
  if n_local < 1:
    raise ValueError("z has an empty batch axis.")
  _check_temperature(temperature)
  _check_view_reduction(view_reduction)

  u = _l2_normalize(z)                                           # [V, n, D]
  u_all = parallel.all_gather_batch(u, axis_name, axis=1)         # [V, N, D]
  n_global = u_all.shape[1]
  offset = parallel.local_row_offset(n_local, axis_name)

  # Logits of local anchors against every gathered candidate: [V, n, V, N].
  logits = jnp.einsum("vid,wjd->viwj", u, u_all) / temperature
  rows = offset + jnp.arange(n_local)                             # global row ids
  same_row = rows[:, None] == jnp.arange(n_global)[None, :]      # [n, N]
  same_view = jnp.eye(num_views, dtype=bool)                      # [V, V]
  self_mask = same_view[:, None, :, None] & same_row[None, :, None, :]
  pos_mask = (~same_view)[:, None, :, None] & same_row[None, :, None, :]
  masked = jnp.where(self_mask, -jnp.inf, logits).reshape(num_views, n_local, -1)
  log_denom = jax.nn.logsumexp(masked, axis=-1)                   # [V, n]

  # Positives of a local anchor are local rows of the other views: no gather.
  pos_cos = jnp.einsum("vid,wid->viw", u, u)                      # [V, n, V]
  off_diag = ~same_view[:, None, :]
  pos_logit_mean = jnp.sum(jnp.where(off_diag, pos_cos, 0.0), axis=-1) / (
      (num_views - 1) * temperature)
  per_anchor = log_denom - pos_logit_mean                         # [V, n]

  per_view = parallel.batch_sum(per_anchor, axis_name, axis=1) / n_global   # [V]
  loss = jnp.sum(per_view) if view_reduction == "sum" else jnp.mean(per_view)

  # Diagnostics (no gradient).
  logits_sg = jax.lax.stop_gradient(masked)
  flat_pos = pos_mask.reshape(num_views, n_local, -1)
  best_pos = jnp.max(jnp.where(flat_pos, logits_sg, -jnp.inf), axis=-1)
  best_neg = jnp.max(jnp.where(flat_pos, -jnp.inf, logits_sg), axis=-1)
  hit = (best_pos > best_neg).astype(z.dtype)
  pos_cos_sg = jax.lax.stop_gradient(jnp.sum(jnp.where(off_diag, pos_cos, 0.0), -1) /
                                     (num_views - 1))
  denom = num_views * n_global
  aux = {
      "mean_anchor_loss": jax.lax.stop_gradient(jnp.mean(per_view)),
      "positive_accuracy": jnp.sum(parallel.batch_sum(hit, axis_name, axis=1)) / denom,
      "positive_cosine": jnp.sum(parallel.batch_sum(pos_cos_sg, axis_name, axis=1)) / denom,
  }
  return loss, aux


def nt_xent_loss(
    z1: jax.Array,
    z2: jax.Array,
    *,
    temperature: float | jax.Array = 0.1,
    view_reduction: str = "sum",
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Symmetric SimCLR NT-Xent (InfoNCE) loss with 2N−2 negatives per anchor.

  With ``u = z/||z||`` and ``s(a, b) = u_a·u_b/τ``, for anchor ``z1_i`` the
  positive is ``z2_i`` and the negatives are all other rows of both views
  (SimCLR Eq. 1)::

    ℓ(1, i) = −log [ exp s(z1_i, z2_i) /
                     (Σ_j exp s(z1_i, z2_j) + Σ_{j≠i} exp s(z1_i, z1_j)) ]

  and symmetrically ``ℓ(2, i)``. ``view_reduction='sum'`` (default, official
  code ``tf2/objective.py``: ``mean(loss_a + loss_b)``) returns
  ``(1/N) Σ_i [ℓ(1,i) + ℓ(2,i)]``; ``'mean'`` returns half of it (SimCLR
  Algorithm 1, solo-learn, lightly, and ``optax.losses.ntxent`` with labels
  ``[0..N−1, 0..N−1]``). Default ``temperature=0.1`` is the official
  ``--temperature`` flag (ImageNet). See :func:`multiview_nt_xent_loss` for
  the distributed path.

  Args:
    z1: ``[N, D]`` embeddings of view 1 (projector outputs; not normalised).
    z2: ``[N, D]`` embeddings of view 2, row ``i`` pairs with ``z1[i]``.
    temperature: τ > 0.
    view_reduction: ``'sum'`` (official code) or ``'mean'`` (paper).
    axis_name: batch mesh axis inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)`` with ``aux`` as in :func:`multiview_nt_xent_loss`.

  Example:
    >>> k1, k2 = jax.random.split(jax.random.key(0))
    >>> z1, z2 = jax.random.normal(k1, (8, 16)), jax.random.normal(k2, (8, 16))
    >>> loss, aux = nt_xent_loss(z1, z2)        # 2 × paper value, τ = 0.1
  """
  _check_pair(z1, z2)
  return multiview_nt_xent_loss(jnp.stack([z1, z2]), temperature=temperature,
                                view_reduction=view_reduction, axis_name=axis_name)


def info_nce_bound(
    z1: jax.Array,
    z2: jax.Array,
    *,
    temperature: float | jax.Array = 0.1,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """InfoNCE lower bound on I(z1; z2) in nats: ``log(2N − 1) − L_anchor``.

  ``L_anchor`` is the NT-Xent loss averaged over the 2N anchors
  (``view_reduction='mean'``). Each anchor scores 2N−1 candidates (one positive),
  so the bound of van den Oord et al. (2018) / Poole et al. (2019, "On
  variational bounds of mutual information", Eq. 12) with K = 2N−1 candidates
  applies: ``I ≥ log K − L``, and the estimate saturates at ``log(2N − 1)``.
  The same-view negatives make the candidates not strictly i.i.d. marginal
  samples; this is the standard practical form (used by SuperInfo /
  ``ssljax.losses.superinfo`` for the predictive term), not a tight estimator.

  Args:
    z1: ``[N, D]`` embeddings of view 1.
    z2: ``[N, D]`` embeddings of view 2.
    temperature: τ > 0 (default 0.1, official SimCLR).
    axis_name: batch mesh axis inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(bound, aux)``: the scalar bound (differentiable; maximise it) and the
    NT-Xent ``aux`` dict.

  Example:
    >>> k1, k2 = jax.random.split(jax.random.key(0))
    >>> z1 = jax.random.normal(k1, (8, 4)); z2 = z1 + 0.01 * jax.random.normal(k2, (8, 4))
    >>> mi, _ = info_nce_bound(z1, z2)          # close to log(15) ≈ 2.71 nats
  """
  loss, aux = nt_xent_loss(z1, z2, temperature=temperature, view_reduction="mean",
                           axis_name=axis_name)
  n_global = parallel.global_batch_size(z1.shape[0], axis_name)
  return jnp.log(2.0 * n_global - 1.0) - loss, aux


def _check_pair(z1: jax.Array, z2: jax.Array) -> None:
  if z1.ndim != 2 or z2.ndim != 2:
    raise ValueError(f"z1 and z2 must have shape [N, D], got {z1.shape} and {z2.shape}; "
                     "flatten extra axes or use multiview_nt_xent_loss for [V, N, D].")
  if z1.shape != z2.shape:
    raise ValueError(f"z1 and z2 must have the same shape (row i of each is the same image), "
                     f"got {z1.shape} and {z2.shape}.")

