"""BYOL regression loss: normalised MSE between online predictions and target projections.

Paper: Grill et al., "Bootstrap Your Own Latent: A New Approach to
Self-Supervised Learning", NeurIPS 2020 (arXiv 2006.07733), Eq. 2 (one
direction) and the symmetrised ``L + L̃`` (Section 3.1). Official code:
``google-deepmind/deepmind-research`` ``byol/utils/helpers.py``
(``regression_loss``, ``l2_normalize`` with ``epsilon=1e-12``) and
``byol/byol_experiment.py`` (``loss_fn``). Formulas, conventions and measured
agreement: ``docs/methods/byol.md``.

Paper vs official code: both **sum** the two directions. The code adds
``regression_loss(pred_view1, sg(proj_view2))`` and
``regression_loss(pred_view2, sg(proj_view1))`` per example and then takes the
mean over the batch, so the loss lies in [0, 8]. Default here:
``view_reduction='sum'``; ``'mean'`` halves it (average of the two directions).

Normalisation uses `ssljax.ops.l2_normalize` (``x / max(||x||, 1e-12)``); the
official ``l2_normalize`` floors the *squared* norm at 1e-12, which differs
only for vectors of norm < 1e-6.

The loss is a mean of per-example terms, so it needs no cross-device
statistics: under ``shard_map`` only the batch mean is reduced (``batch_mean``).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views, same_layout
from ssljax.ops import l2_normalize

_VIEW_REDUCTIONS = ("sum", "mean")


def regression_loss(p: jax.Array, z: jax.Array) -> jax.Array:
  """Per-example BYOL regression loss ``||p/||p|| − z/||z||||² = 2 − 2·cos(p, z)``.

  One direction of BYOL Eq. 2, without a stop-gradient (apply it to ``z``
  yourself, or use :func:`byol_loss`). Normalisation is
  `ssljax.ops.l2_normalize`, so a zero vector maps to zero and gives a finite
  value and gradient.

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
  return jnp.sum(jnp.square(l2_normalize(p) - l2_normalize(z)), axis=-1)


def byol_loss(
    predictions: ViewsLike,
    targets: ViewsLike,
    *,
    view_reduction: str = "sum",
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Symmetrised BYOL loss: view v's prediction regresses the *other* view's stop-gradient target.

  ::

    L = (1/N) Σ_i [ (2 − 2·cos(q1_i, sg(z'2_i))) + (2 − 2·cos(q2_i, sg(z'1_i))) ]

  where ``q_v = predictions[v]`` is the online prediction of view ``v`` and
  ``z'_v = targets[v]`` the target (EMA) projection of view ``v``: the pairing
  is crossed, ``predictions[0]`` with ``targets[1]`` and ``predictions[1]``
  with ``targets[0]`` (BYOL Eq. 2 plus its view-swapped copy). So swapping the
  two views of ``targets`` alone changes the loss; swapping both arrays' views
  does not. The official ``loss_fn`` sums both directions (default
  ``view_reduction='sum'``); ``'mean'`` divides by 2. ``N`` is the global batch
  size. See ``docs/methods/byol.md``.

  Args:
    predictions: ``[2, N, D]`` online predictor outputs of the two views (or a
      pair of ``[N, D]``).
    targets: ``[2, N, D]`` target projector outputs of the same views, in the
      same view order (gradient stopped inside).
    view_reduction: ``'sum'`` (official code) or ``'mean'``.
    axis_name: batch mesh axis inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux`` holds the scalars ``'cosine_12'`` = mean
    cos(q1, z'2) and ``'cosine_21'`` = mean cos(q2, z'1) (no gradient).

  Example:
    >>> predictions, targets = jax.random.normal(jax.random.key(0), (2, 2, 8, 16))
    >>> loss, aux = byol_loss(predictions, targets)      # each [V=2, N=8, D=16]
    >>> loss.shape, sorted(aux)
    ((), ['cosine_12', 'cosine_21'])
  """
  p = jnp.asarray(as_views(predictions, kernel="byol_loss", num_views=2, name="predictions",
                          axis_name=axis_name))
  t = jnp.asarray(as_views(targets, kernel="byol_loss", num_views=2, name="targets",
                          axis_name=axis_name))
  same_layout(p, t, kernel="byol_loss", names=("predictions", "targets"))
  if p.shape != t.shape:
    raise ValueError(f"byol_loss: predictions {p.shape} and targets {t.shape} must have the same "
                     "shape [2, N, D]; the predictor output dimension must equal the projector "
                     "output dimension.")
  if view_reduction not in _VIEW_REDUCTIONS:
    raise ValueError(f"view_reduction={view_reduction!r} is not one of {_VIEW_REDUCTIONS}: "
                     "'sum' adds both directions (official BYOL code), 'mean' averages them.")
  t = jax.lax.stop_gradient(t)
  l12 = regression_loss(p[0], t[1])   # [n]
  l21 = regression_loss(p[1], t[0])   # [n]
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
