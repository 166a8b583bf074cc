"""SimCLR NT-Xent / InfoNCE loss for V ≥ 2 views, and the InfoNCE MI bound.

Paper: Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML 2020 (arXiv 2002.05709), Eq. 1 and
Algorithm 1. Official code: ``google-research/simclr`` ``tf2/objective.py``
(``add_contrastive_loss``) and ``tf2/run.py`` (flags). Formulas, conventions
and measured agreement: ``docs/methods/simclr.md``.

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
  (``hidden_norm=True`` in the code) with `ssljax.ops.l2_normalize`,
  ``x / max(||x||, 1e-12)``; ``tf.math.l2_normalize`` floors the *squared*
  norm at 1e-12 instead, which differs only for vectors of norm < 1e-6.

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
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize

_VIEW_REDUCTIONS = ("sum", "mean")


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


def nt_xent_loss(
    views: ViewsLike,
    *,
    temperature: float | jax.Array = 0.1,
    view_reduction: str = "sum",
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """SimCLR NT-Xent (InfoNCE) loss of V ≥ 2 views; every other view of an image is a positive.

  With ``u_{v,i} = z_{v,i} / ||z_{v,i}||`` and ``s(a, b) = u_a·u_b / τ``, the loss
  of anchor ``(v, i)`` averages the log-likelihood over its ``V−1`` positives
  against all ``V·N − 1`` other embeddings as candidates::

    ℓ(v, i) = −1/(V−1) Σ_{w≠v} log [ exp s((v,i),(w,i))
                                      / Σ_{(w',j)≠(v,i)} exp s((v,i),(w',j)) ]

  For V = 2 this is SimCLR Eq. 1 (one positive, 2N−2 negatives per anchor);
  for V > 2 it is the multi-positive SupCon "L_out" form (Khosla et al. 2020,
  Eq. 2, with labels = image index). Reduction over anchors (``N`` = global
  batch size):

  * ``'sum'``  (default, official ``tf2/objective.py``: ``mean(loss_a + loss_b)``):
    ``L = Σ_v (1/N) Σ_i ℓ(v, i)``;
  * ``'mean'`` (SimCLR Algorithm 1, solo-learn, lightly):
    ``L = 1/(V·N) Σ_{v,i} ℓ(v, i)``; for V = 2 this equals
    ``optax.losses.ntxent`` with labels ``[0..N−1, 0..N−1]`` (for V > 2 optax
    uses one softmax per positive pair, a different loss).

  See ``docs/methods/simclr.md``.

  Args:
    views: ``[V, N, D]`` embeddings (projector outputs, not normalised), or a
      sequence of V arrays ``[N, D]``; ``views[v, i]`` is view ``v`` of image
      ``i``. Under ``shard_map``, N is the local shard of axis 1.
    temperature: softmax temperature τ > 0 (default 0.1, official ``--temperature``;
      scalar, may be traced).
    view_reduction: ``'sum'`` (official code) or ``'mean'`` (paper), see above.
    axis_name: mesh axis of the batch inside ``shard_map``; ``None`` on the
      global batch.

  Returns:
    ``(loss, aux)``; ``aux`` holds the scalars ``'mean_anchor_loss'`` (mean of
    ℓ over all anchors, nats), ``'positive_accuracy'`` (fraction of anchors
    whose most similar candidate is a positive) and ``'positive_cosine'`` (mean
    cosine of positive pairs). ``aux`` carries no gradient.

  Example:
    >>> views = jax.random.normal(jax.random.key(0), (2, 8, 16))   # [V=2, N, D]
    >>> loss, aux = nt_xent_loss(views)          # 2 × the paper's value, τ = 0.1
    >>> loss.shape, sorted(aux)
    ((), ['mean_anchor_loss', 'positive_accuracy', 'positive_cosine'])
    >>> loss3, _ = nt_xent_loss(jax.random.normal(jax.random.key(1), (3, 8, 16)), temperature=0.5)
  """
  z = jnp.asarray(as_views(views, kernel="nt_xent_loss", min_views=2, axis_name=axis_name))
  if not jnp.issubdtype(z.dtype, jnp.floating):
    raise ValueError(f"nt_xent_loss: views must be a floating array, got dtype {z.dtype}.")
  _check_temperature(temperature)
  _check_view_reduction(view_reduction)
  num_views, n_local, _ = z.shape

  u = l2_normalize(z)                                             # [V, n, D]
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


def info_nce_bound(
    views: ViewsLike,
    *,
    temperature: float | jax.Array = 0.1,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """InfoNCE lower bound on I(z1; z2) in nats: ``log(2N − 1) − L_anchor``.

  ``L_anchor`` is the two-view NT-Xent loss averaged over the 2N anchors
  (:func:`nt_xent_loss` with ``view_reduction='mean'``). Each anchor scores
  2N−1 candidates (one positive), so the bound of van den Oord et al. (2018) /
  Poole et al. (2019, "On variational bounds of mutual information", Eq. 12)
  with K = 2N−1 candidates applies: ``I ≥ log K − L``, and the estimate
  saturates at ``log(2N − 1)``. The same-view negatives make the candidates
  not strictly i.i.d. marginal samples; this is the standard practical form
  (used by `ssljax.losses.superinfo` for the predictive term), not a tight
  estimator. See ``docs/methods/simclr.md``.

  Args:
    views: ``[2, N, D]`` embeddings of the two views, or ``(z1, z2)``.
    temperature: τ > 0 (default 0.1, official SimCLR).
    axis_name: batch mesh axis inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(bound, aux)``: the scalar bound (differentiable; maximise it) and the
    :func:`nt_xent_loss` ``aux`` dict.

  Example:
    >>> k1, k2 = jax.random.split(jax.random.key(0))
    >>> z1 = jax.random.normal(k1, (8, 32)); z2 = z1 + 0.01 * jax.random.normal(k2, (8, 32))
    >>> mi, _ = info_nce_bound((z1, z2))        # near-copies: close to log(15) ≈ 2.71 nats
    >>> round(float(mi), 2)
    2.7
  """
  z = as_views(views, kernel="info_nce_bound", num_views=2, axis_name=axis_name)
  loss, aux = nt_xent_loss(z, temperature=temperature, view_reduction="mean",
                           axis_name=axis_name)
  n_global = parallel.global_batch_size(z.shape[1], axis_name)
  return jnp.log(2.0 * n_global - 1.0) - loss, aux
