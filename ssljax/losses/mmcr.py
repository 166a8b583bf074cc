"""MMCR: Maximum Manifold Capacity Representations (nuclear norm of the view centroids).

Paper: Yerxa, Kuang, Simoncelli and Chung, "Learning Efficient Coding of
Natural Images with Maximum Manifold Capacity Representations", NeurIPS 2023
(arXiv 2303.03307), Sec. 3 (Eq. 3 and its local-term variant). Official
code: ``ThomasYerxa/mmcr`` ``mmcr/cifar_stl/loss_mmcr.py`` and
``mmcr/imagenet/loss_mmcr.py`` (``MMCR_Loss``; ``--lmbda`` default 0 in
``pretrain_cifar_stl.py``). Formulas and conventions: ``docs/methods/mmcr.md``.

With ``u_{v,i} = z_{v,i}/||z_{v,i}||``, the centroid ``c_i = 1/V Σ_v u_{v,i}``,
``C = [c_1; …; c_N] ∈ R^{N×D}`` (global batch) and ``Z_i = [u_{1,i}; …;
u_{V,i}] ∈ R^{V×D}``::

  L = λ/N Σ_i ||Z_i||_* − ||C||_*

(official ``loss = lmbda * local_nuc / batch_size - global_nuc``). Maximising
the nuclear norm of the centroid matrix spreads the centroids over many
directions (large "manifold capacity"); the views of one image are pulled
together implicitly, since only tight manifolds have long centroids (each
``||c_i|| ≤ 1``).

Gradient. ``||C||_* = ⟨C, U Vᵀ⟩`` for the thin SVD ``C = U S Vᵀ``, and
``U Vᵀ`` is the gradient of the nuclear norm (a subgradient where singular
values vanish). The kernel evaluates ``⟨C, stop_gradient(U_+ V_+ᵀ)⟩``, with
``U_+, V_+`` the singular vectors of singular values above the rank tolerance
``s_max · max(N, D) · ε_mach``: same value, and a gradient that stays finite
when singular values coincide or vanish (collapse, ``D > N``), where
differentiating ``jnp.linalg.svd`` / ``torch.linalg.svdvals`` gives NaN or
inf. Second derivatives are not supported.

Distributed use: under ``shard_map`` every device all-gathers the centroids
(``N·D`` numbers, 4·N·D bytes in float32), computes the SVD of the global
``C`` (as the official distributed loss does) and contributes ``⟨c_i,
(U_+V_+ᵀ)_i⟩`` for its own rows; the ``psum`` of these is ``||C||_*``. The
local term needs no communication. 1 device == n devices for the value and
the gradient (the official DDP run averages per-rank gradients in which
only local rows carry gradient: 1/n of the single-GPU gradient).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize


def nuclear_norm_direction(x: jax.Array) -> jax.Array:
  """``U_+ V_+ᵀ``: the (minimal-norm sub)gradient of ``||x||_*`` for ``x`` [..., M, K].

  Singular directions with ``s ≤ s_max · max(M, K) · ε_mach`` are dropped
  (NumPy's ``matrix_rank`` tolerance). No gradient flows through it.

  Example:
    >>> x = jnp.array([[3., 0.], [0., 0.]])
    >>> nuclear_norm_direction(x).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
  """
  x = lax.stop_gradient(x)
  u, s, vt = jnp.linalg.svd(x, full_matrices=False)
  tol = s[..., :1] * max(x.shape[-2:]) * jnp.finfo(x.dtype).eps
  return (u * (s > tol)[..., None, :]) @ vt


def mmcr_loss(views: ViewsLike, *, lmbda: float | jax.Array = 0.0,
              axis_name: Optional[str] = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """MMCR loss ``λ/N Σ_i ||Z_i||_* − ||C||_*`` of V ≥ 2 views (official ``MMCR_Loss``).

  Estimates the "manifold capacity" of the batch: ``||C||_*`` is the sum of
  the singular values of the centroid matrix, a convex surrogate of its rank
  (how many directions the N object manifolds span). It grows with N (at most
  ``sqrt(min(N, D)·N)`` since ``||c_i|| ≤ 1``), so its scale depends on the
  batch size; it saturates when the centroids have unit norm (all views
  agree) and are orthogonal (``min(N, D)`` equal singular values). The local
  term (λ > 0) penalises the spread of each image's V views.

  Args:
    views: ``[V, N, D]`` projector outputs (normalised inside), V ≥ 2, or a
      sequence of V arrays ``[N, D]``. Under ``shard_map`` N is the local shard.
    lmbda: λ, weight of the local nuclear norms (official ``--lmbda`` default
      0: the term is then skipped, as in the official code).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)`` with ``aux['global_nuc']`` (``||C||_*``) and
    ``aux['local_nuc']`` (``Σ_i ||Z_i||_*``, 0 when skipped), without gradient.

  Example:
    >>> views = jnp.stack([jnp.eye(4), jnp.eye(4)])   # V=2 identical views, orthogonal centroids
    >>> loss, aux = mmcr_loss(views)                   # ||I_4||_* = 4
    >>> float(loss), float(aux['global_nuc'])
    (-4.0, 4.0)
  """
  z = jnp.asarray(as_views(views, kernel="mmcr_loss", min_views=2, axis_name=axis_name))
  u = l2_normalize(z.astype(jnp.promote_types(z.dtype, jnp.float32)))   # [V, n, D]
  n_local = u.shape[1]
  centroids = jnp.mean(u, axis=0)                                       # [n, D]
  c_all = parallel.all_gather_batch(centroids, axis_name)               # [N, D]
  n = c_all.shape[0]
  direction = nuclear_norm_direction(c_all)
  if axis_name is not None:
    direction = lax.dynamic_slice_in_dim(
        direction, parallel.local_row_offset(n_local, axis_name), n_local)
  global_nuc = parallel.batch_sum(jnp.sum(centroids * direction, -1), axis_name)
  if isinstance(lmbda, (int, float)) and lmbda == 0:
    local_nuc = jnp.zeros((), u.dtype)
  else:
    per_example = jnp.swapaxes(u, 0, 1)                                 # [n, V, D]
    local_nuc = parallel.batch_sum(
        jnp.sum(per_example * nuclear_norm_direction(per_example), (-2, -1)), axis_name)
  loss = lmbda * local_nuc / n - global_nuc
  return loss, {"global_nuc": lax.stop_gradient(global_nuc),
                "local_nuc": lax.stop_gradient(local_nuc)}
