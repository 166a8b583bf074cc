"""Alignment and uniformity on the hypersphere (Wang & Isola 2020).

Paper: Wang and Isola, "Understanding Contrastive Representation Learning
through Alignment and Uniformity on the Hypersphere", ICML 2020 (arXiv
2005.10242), Eqs. 4-5 and their PyTorch snippet (Fig. 5). Official code:
``SsnL/align_uniform`` ``align_uniform/__init__.py`` (``align_loss``,
``uniform_loss``). Formulas and conventions: ``docs/methods/hypersphere.md``.

With ``u = z/||z||`` (the snippet takes normalised features; here the kernels
normalise)::

  L_align(α)   = E_{pos pairs} ||u − u'||₂^α                         (Eq. 4)
  L_uniform(t) = log E_{i<j} exp(−t ||u_i − u_j||²)                   (Eq. 5)

Conventions for V views (the official snippet is written for two):

* ``alignment_loss`` averages the per-pair mean over the ``V(V−1)/2`` view
  pairs (for V = 2: the official ``align_loss(x, y)``).
* ``uniformity_loss`` evaluates Eq. 5 on each view's N embeddings separately
  (all ``N(N−1)/2`` pairs of the global batch, ``torch.pdist``) and averages
  over views: the official ``(uniform_loss(x) + uniform_loss(y)) / 2``.
  Pairs across views are not used.

Distributed use: alignment is a per-example mean (no gather, one scalar
``psum``). Uniformity needs all pairs: under ``shard_map`` every device
all-gathers the normalised embeddings (``V·N·D`` numbers, 4·V·N·D bytes in
float32), sums ``exp(−t·d²)`` over its own rows against every other row, and
the sums are ``psum``-med before the log (shifted by the global maximum,
``pmax``, for range safety). 1 device == n devices (value and gradient).
"""

from __future__ import annotations

import itertools
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize


def _unit_views(views, kernel, axis_name, min_views):
  z = jnp.asarray(as_views(views, kernel=kernel, min_views=min_views, axis_name=axis_name))
  return l2_normalize(z.astype(jnp.promote_types(z.dtype, jnp.float32)))


def _safe_pow(sq: jax.Array, half_alpha) -> jax.Array:
  """``sq^(α/2)`` with a zero (not NaN) gradient at ``sq = 0`` for α < 2."""
  pos = sq > 0
  return jnp.where(pos, jnp.where(pos, sq, 1.0) ** half_alpha, 0.0)


def alignment_loss(views: ViewsLike, *, alpha: float | jax.Array = 2.0,
                   axis_name: Optional[str] = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Alignment: mean ``||u_v − u_w||^α`` over positive pairs (Wang & Isola Eq. 4).

  Estimates the expected distance between the normalised embeddings of two
  views of one image; 0 when they coincide (it is minimised by collapse on its
  own: pair it with a uniformity / entropy term). Exact, no estimator bias.

  Args:
    views: ``[V, N, D]`` embeddings (normalised inside), V ≥ 2, or a sequence
      of V arrays ``[N, D]``.
    alpha: α > 0 (official default 2).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux['positive_cosine']``: mean cosine of the pairs.

  Example:
    >>> z = jnp.array([[[1., 0.], [0., 3.]], [[0., 1.], [2., 0.]]])   # V=2, N=2: orthogonal pairs
    >>> loss, aux = alignment_loss(z)                  # ||u − u'||² = 2
    >>> float(loss), float(aux['positive_cosine'])
    (2.0, 0.0)
  """
  u = _unit_views(views, "alignment_loss", axis_name, 2)
  n = parallel.global_batch_size(u.shape[1], axis_name)
  pairs = list(itertools.combinations(range(u.shape[0]), 2))
  dist, cos = 0.0, 0.0
  for v, w in pairs:
    sq = jnp.sum(jnp.square(u[v] - u[w]), axis=-1)
    dist = dist + parallel.batch_sum(_safe_pow(sq, alpha / 2), axis_name) / n
    cos = cos + parallel.batch_sum(jnp.sum(u[v] * u[w], axis=-1), axis_name) / n
  return dist / len(pairs), {"positive_cosine": lax.stop_gradient(cos / len(pairs))}


def uniformity_loss(views: ViewsLike, *, t: float | jax.Array = 2.0,
                    axis_name: Optional[str] = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Uniformity: ``log E_{i≠j} exp(−t ||u_i − u_j||²)`` per view, averaged (Eq. 5).

  The log of the mean Gaussian potential between distinct examples of the
  global batch (``torch.pdist`` pairs); per view, then averaged over views.
  It estimates the log of the expected pairwise potential, whose minimiser
  over distributions on the sphere is the uniform one (Wang & Isola Sec. 4.1);
  as the log of an empirical mean it is biased low (Jensen), by O(1/N²) of
  the pairs' variance. It saturates at 0 for a collapsed batch (every
  potential is 1) and is bounded below by ``−4t`` (antipodal pairs).

  Args:
    views: ``[V, N, D]`` embeddings (normalised inside), V ≥ 1, or a sequence
      of V arrays ``[N, D]``; N ≥ 2 globally.
    t: the potential's scale t > 0 (official default 2).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux['mean_sq_distance']``: mean ``||u_i − u_j||²``
    over the same pairs (2 for uniform embeddings), without gradient.

  Example:
    >>> z = jnp.array([[[1., 0.], [-1., 0.]]])          # V=1, N=2: antipodal, d² = 4
    >>> loss, aux = uniformity_loss(z)                  # log exp(−2·4)
    >>> round(float(loss), 4), round(float(aux['mean_sq_distance']), 4)
    (-8.0, 4.0)
  """
  u = _unit_views(views, "uniformity_loss", axis_name, 1)
  num_views, n_local, _ = u.shape
  u_all = parallel.all_gather_batch(u, axis_name, axis=1)            # [V, N, D]
  n = u_all.shape[1]
  if n < 2:
    raise ValueError(f"uniformity_loss needs a global batch of at least 2 examples, got N = {n}.")
  rows = parallel.local_row_offset(n_local, axis_name) + jnp.arange(n_local)
  other = rows[:, None] != jnp.arange(n)[None, :]                    # [n, N]
  sq_norm = jnp.sum(jnp.square(u), -1)
  sq_norm_all = jnp.sum(jnp.square(u_all), -1)
  sq = jnp.maximum(sq_norm[:, :, None] + sq_norm_all[:, None, :]
                   - 2.0 * jnp.einsum("vid,vjd->vij", u, u_all), 0.0)   # [V, n, N]
  logits = jnp.where(other, -t * sq, -jnp.inf)
  # log Σ exp with the global max as shift: exact value, no underflow for large t.
  shift = lax.stop_gradient(jnp.max(logits, axis=(1, 2)))           # [V]
  if axis_name is not None:
    shift = lax.pmax(shift, axis_name)
  total = parallel.batch_sum(jnp.sum(jnp.exp(logits - shift[:, None, None]), -1),
                             axis_name, axis=1)                      # [V]
  per_view = shift + jnp.log(total) - jnp.log(n * (n - 1.0))
  mean_sq = parallel.batch_sum(jnp.sum(jnp.where(other, sq, 0.0), -1), axis_name,
                               axis=1) / (n * (n - 1.0))
  return jnp.mean(per_view), {"mean_sq_distance": lax.stop_gradient(jnp.mean(mean_sq))}
