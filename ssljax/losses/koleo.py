"""KoLeo: the Kozachenko-Leonenko nearest-neighbour entropy regulariser (as in DINOv2).

Papers: Sablayrolles, Douze, Schmid and Jégou, "Spreading vectors for
similarity search", ICLR 2019 (arXiv 1806.03198), Sec. 3.3 (Eq. 5); used as
a regulariser by Oquab et al., "DINOv2", TMLR 2024 (arXiv 2304.07193),
Sec. 4. Official code: ``facebookresearch/dinov2``
``dinov2/loss/koleo_loss.py`` (``KoLeoLoss``) and
``dinov2/train/ssl_meta_arch.py`` (its use). Formulas and conventions:
``docs/methods/koleo.md``.

With ``u = z / max(||z||, ε)`` (``F.normalize(eps=ε)``) and ``nn(i)`` the
nearest other example (largest inner product, self excluded)::

  L = −1/N Σ_i log(||u_i − u_{nn(i)} + ε||₂ + ε)

``||a − b + ε||`` is ``nn.PairwiseDistance(2, eps=ε)``, which adds ε to every
coordinate of the difference; here too, so a duplicate row has distance
``ε·sqrt(D)``, not 0 (finite log and gradient at collapse). The
Kozachenko-Leonenko estimator of the differential entropy of the ``u_i`` is
``D/N Σ_i log ρ_i + const`` (ρ_i the nearest-neighbour distance); ``−L`` is
it up to the factor D and the constant, so minimising L spreads the
embeddings uniformly (maximises the entropy estimate).

Conventions:

* **Views.** DINOv2 applies KoLeo to each global crop's batch separately and
  *sums* (``sum(self.koleo_loss(p) for p in student_cls_tokens.chunk(2))``,
  no pairs across crops: two crops of one image are near by construction).
  Here: the same per-view loss, summed over the V views.
* **Global batch.** DINOv2 computes it on each GPU's local batch. Here the
  nearest neighbour is searched in the *global* batch, so the value does not
  depend on the device count (a per-device KoLeo is larger with more devices:
  neighbours are farther in a smaller batch).

Distributed use: under ``shard_map`` every device all-gathers the normalised
embeddings (``V·N·D`` numbers, 4·V·N·D bytes in float32), finds the nearest
neighbour of each of its rows in the global batch, and the sum of the log
distances is ``psum``-med; the gradient reaches the neighbour's shard through
the gather. 1 device == n devices (value and gradient).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize


def koleo_loss(views: ViewsLike, *, eps: float = 1e-8,
               axis_name: Optional[str] = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """KoLeo regulariser: ``−mean_i log(min_{j≠i} ||u_i − u_j||)`` per view, summed over views.

  Estimates (up to a factor D and a constant) the negative Kozachenko-Leonenko
  differential entropy of the normalised embeddings; the estimator is
  asymptotically unbiased in N, biased at small N (log-distances to the
  nearest of N − 1 points shrink like ``−log N / D``), and driven by the
  closest pairs only (it does not see global structure). Saturates when the
  nearest-neighbour distances stop growing (a spread-out batch); at collapse
  every distance is ``ε·sqrt(D)``, i.e. the loss is ``≈ −log(ε·sqrt(D))``.

  Args:
    views: ``[V, N, D]`` embeddings (normalised inside), V ≥ 1, or a sequence
      of V arrays ``[N, D]``; N ≥ 2 globally.
    eps: ε of ``F.normalize``, ``PairwiseDistance`` and the log (official 1e-8).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux['nn_distance']``: mean nearest-neighbour distance
    over views and examples, without gradient.

  Example:
    >>> z = jnp.array([[[1., 0.], [0., 1.], [-1., 0.], [0., -1.]]])   # V=1: square on the circle
    >>> loss, aux = koleo_loss(z)                                    # every NN at distance sqrt 2
    >>> round(float(loss), 4), round(float(aux['nn_distance']), 4)
    (-0.3466, 1.4142)
  """
  z = jnp.asarray(as_views(views, kernel="koleo_loss", min_views=1, axis_name=axis_name))
  u = l2_normalize(z.astype(jnp.promote_types(z.dtype, jnp.float32)), eps=eps)
  _, n_local, _ = u.shape
  u_all = parallel.all_gather_batch(u, axis_name, axis=1)            # [V, N, D]
  n = u_all.shape[1]
  if n < 2:
    raise ValueError(f"koleo_loss needs a global batch of at least 2 examples, got N = {n}.")
  rows = parallel.local_row_offset(n_local, axis_name) + jnp.arange(n_local)
  dots = jnp.einsum("vid,vjd->vij", u, u_all)                       # [V, n, N]
  dots = jnp.where(rows[:, None] == jnp.arange(n)[None, :], -jnp.inf, dots)
  nearest = jnp.argmax(dots, axis=-1)                                # [V, n]: max inner product
  neighbour = jnp.take_along_axis(u_all, nearest[..., None], axis=1)  # [V, n, D]
  dist = jnp.sqrt(jnp.sum(jnp.square(u - neighbour + eps), axis=-1))  # PairwiseDistance(2, eps)
  per_view = -parallel.batch_sum(jnp.log(dist + eps), axis_name, axis=1) / n   # [V]
  mean_dist = jnp.mean(parallel.batch_sum(dist, axis_name, axis=1) / n)
  return jnp.sum(per_view), {"nn_distance": lax.stop_gradient(mean_dist)}
