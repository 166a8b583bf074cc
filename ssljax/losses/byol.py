"""BYOL regression loss: normalised MSE between online predictions and target projections.

Paper: Grill et al., "Bootstrap Your Own Latent: A New Approach to
Self-Supervised Learning", NeurIPS 2020 (arXiv 2006.07733), Eq. 2 (one
direction) and the symmetrised ``L + L̃`` (Section 3.1). Official code:
``google-deepmind/deepmind-research`` ``byol/utils/helpers.py``
(``regression_loss``, ``l2_normalize`` with ``epsilon=1e-12``) and
``byol/byol_experiment.py`` (``loss_fn``).

Paper vs official code: both **sum** the two directions. The code adds
``regression_loss(pred_view1, sg(proj_view2))`` and
``regression_loss(pred_view2, sg(proj_view1))`` per example and then takes the
mean over the batch, so the loss lies in [0, 8]. Default here:
``view_reduction='sum'``; ``'mean'`` halves it (average of the two directions).

The loss is a mean of per-example terms, so it needs no cross-device
statistics: under ``shard_map`` only the batch mean is reduced (``batch_mean``).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel

_VIEW_REDUCTIONS = ("sum", "mean")


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  # Same convention as byol/utils/helpers.py: rsqrt(max(||x||^2, eps)).
  sq = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, eps))


def regression_loss(p: jax.Array, z: jax.Array) -> jax.Array:
  """Per-example BYOL regression loss ``||p/||p|| − z/||z||||² = 2 − 2·cos(p, z)``.

  One direction of BYOL Eq. 2, without a stop-gradient (apply it to ``z``
  yourself, or use :func:`byol_loss`). Normalisation follows the official
  ``l2_normalize`` (``x · rsqrt(max(||x||², 1e-12))``), so a zero vector gives
  a finite value and gradient.

  Args:
    p: ``[..., D]`` online predictions.
    z: ``[..., D]`` target projections, same shape as ``p``.

  Returns:
    ``[...]`` per-example losses in [0, 4].

  Example:
    >>> p = jnp.array([[1., 0.]]); z = jnp.array([[0., 2.]])
    >>> regression_loss(p, z)      # 2 − 2·cos(90°) = 2
    Array([2.], dtype=float32)
  """
  if p.shape != z.shape:
    raise ValueError(f"p and z must have the same shape, got {p.shape} and {z.shape}.")
  if p.ndim < 1:
    raise ValueError("p and z need a feature axis (shape [..., D]), got scalars.")
  return jnp.sum(jnp.square(_l2_normalize(p) - _l2_normalize(z)), axis=-1)


def byol_loss(
    online_pred1: jax.Array,
    online_pred2: jax.Array,
    target_proj1: jax.Array,
    target_proj2: jax.Array,
    *,
    view_reduction: str = "sum",
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Symmetrised BYOL loss with stop-gradient targets.

  ::

    L = (1/N) Σ_i [ (2 − 2·cos(q1_i, sg(z'2_i))) + (2 − 2·cos(q2_i, sg(z'1_i))) ]

  where ``q_v`` is the online prediction of view ``v`` and ``z'_v`` the target
  (EMA) projection of view ``v`` (BYOL Eq. 2 plus its view-swapped copy; the
  official ``loss_fn`` sums both directions, default ``view_reduction='sum'``;
  ``'mean'`` divides by 2). ``N`` is the global batch size.

  Args:
    online_pred1: ``[N, D]`` online predictor output for view 1.
    online_pred2: ``[N, D]`` online predictor output for view 2.
    target_proj1: ``[N, D]`` target projector output for view 1 (gradient stopped).
    target_proj2: ``[N, D]`` target projector output for view 2 (gradient stopped).
    view_reduction: ``'sum'`` (official code) or ``'mean'``.
    axis_name: batch mesh axis inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux`` holds ``'cosine_12'`` = mean cos(q1, z'2) and
    ``'cosine_21'`` = mean cos(q2, z'1) (no gradient).

  Example:
    >>> q1, q2, t1, t2 = jax.random.normal(jax.random.key(0), (4, 8, 16))
    >>> loss, aux = byol_loss(q1, q2, t1, t2)
  """
  shapes = [a.shape for a in (online_pred1, online_pred2, target_proj1, target_proj2)]
  if any(len(s) != 2 for s in shapes) or len(set(shapes)) != 1:
    raise ValueError("online_pred1, online_pred2, target_proj1 and target_proj2 must all have "
                     f"the same shape [N, D], got {shapes}; the predictor output dimension must "
                     "equal the projector output dimension.")
  if view_reduction not in _VIEW_REDUCTIONS:
    raise ValueError(f"view_reduction={view_reduction!r} is not one of {_VIEW_REDUCTIONS}: "
                     "'sum' adds both directions (official BYOL code), 'mean' averages them.")
  l12 = regression_loss(online_pred1, jax.lax.stop_gradient(target_proj2))   # [n]
  l21 = regression_loss(online_pred2, jax.lax.stop_gradient(target_proj1))   # [n]
  per_example = l12 + l21
  if view_reduction == "mean":
    per_example = 0.5 * per_example
  loss = parallel.batch_mean(per_example, axis_name)
  # For unit vectors ||a − b||² = 2 − 2·cos, so cos = 1 − ℓ/2.
  aux = {
      "cosine_12": 1.0 - 0.5 * parallel.batch_mean(jax.lax.stop_gradient(l12), axis_name),
      "cosine_21": 1.0 - 0.5 * parallel.batch_mean(jax.lax.stop_gradient(l21), axis_name),
  }
  return loss, aux
