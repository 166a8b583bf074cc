"""Barlow Twins redundancy-reduction loss, computed from D×D sufficient statistics.

Paper: Zbontar, Jing, Misra, LeCun and Deny, "Barlow Twins: Self-Supervised
Learning via Redundancy Reduction", ICML 2021 (arXiv 2103.03230), Eq. 1-2.
Official code: ``facebookresearch/barlowtwins`` ``main.py`` (``BarlowTwins.forward``).
Formulas, conventions and measured agreement: ``docs/methods/barlow_twins.md``.

What the official code does, and what is followed here:

* ``self.bn = nn.BatchNorm1d(D, affine=False)`` (converted to SyncBatchNorm):
  each dimension is standardised with the **global-batch** mean and the
  **biased** variance, ``(z − μ) / sqrt(σ² + 1e-5)``. Default ``eps=1e-5``.
* ``c = bn(z1).T @ bn(z2) / batch_size`` with the global batch size, summed
  over GPUs by ``all_reduce``: the cross-correlation divides by N (not N−1).
* ``loss = Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij²`` with ``--lambd 0.0051``.
* **Loss scale.** The first public release had ``--scale-loss`` (README command
  ``--scale-loss 0.024``, the released 1000-epoch checkpoint was trained with
  it; the README's "Issues" section says it matched the development code). The
  current ``main.py`` has no such flag, i.e. scale 1. Default here:
  ``scale_loss=1.0`` (current repo); pass ``0.024`` to reproduce the released
  run. solo-learn's CIFAR config uses ``scale_loss: 0.1``.

Distributed use: the loss depends on the batch only through
``n, Σz1, Σz2, Σz1², Σz2², Σz1ᵀz2`` (:func:`barlow_twins_stats`), so under
``shard_map`` the statistics are ``psum``-ed (O(D²) traffic) instead of
all-gathering N×D embeddings; :func:`barlow_twins_loss` uses this path for
every mode, and the train step (jit on the global batch, ``axis_name=None``)
gets the same all-reduce of D×D statistics from the partitioner.

Precision: by default (``center=True``) the sums are taken of ``z − μ_batch``
with the global-batch mean (one extra D-vector reduction; the loss does not
depend on the shift, so it carries no gradient). Raw moments
(``center=False``) add across devices *and* micro-batches, but lose precision
as ``(|μ|/σ)²`` in float32 (measured: relative loss error 1e-3 at
``|μ|/σ = 30``, N = 256, D = 32) and much more in bfloat16.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views


class BarlowTwinsStats(NamedTuple):
  """Global-batch sufficient statistics of two views (sums over the batch).

  The sums are of ``y_v = z_v − shift_v`` for a per-dimension shift that is the
  same for every example (the batch mean with ``center=True``, zero otherwise);
  the loss is invariant to the shift.

  Attributes:
    count: scalar N.
    sum1: ``[D]`` Σ_n y1_n.
    sum2: ``[D]`` Σ_n y2_n.
    sumsq1: ``[D]`` Σ_n y1_n².
    sumsq2: ``[D]`` Σ_n y2_n².
    cross: ``[D, D]`` Σ_n y1_n y2_nᵀ.
  """
  count: jax.Array
  sum1: jax.Array
  sum2: jax.Array
  sumsq1: jax.Array
  sumsq2: jax.Array
  cross: jax.Array


def _two_views(views: ViewsLike, kernel: str, axis_name: Optional[str]) -> jax.Array:
  # as_views passes a NumPy array through; the sums below must run in XLA.
  z = jnp.asarray(as_views(views, kernel=kernel, num_views=2, axis_name=axis_name))
  if not jnp.issubdtype(z.dtype, jnp.floating):
    raise ValueError(f"{kernel}: views must be a floating array, got dtype {z.dtype}.")
  return z


def barlow_twins_stats(views: ViewsLike, *, center: bool = True,
                       axis_name: Optional[str] = None) -> BarlowTwinsStats:
  """Sums over the (global) batch needed by :func:`barlow_twins_from_stats`.

  Args:
    views: ``[2, n, D]`` projector outputs of the two views, or ``(z1, z2)``
      (n = local rows under ``shard_map``).
    center: subtract the global-batch mean before summing (two-pass, precise;
      default). With ``False`` the raw moments are returned: these can be
      added across separate calls (e.g. micro-batches), centred ones cannot.
    axis_name: batch mesh axis; the sums are ``psum``-ed over it.

  Returns:
    :class:`BarlowTwinsStats` of the global batch (replicated).

  Example:
    >>> views = jax.random.normal(jax.random.key(0), (2, 16, 4))   # [V=2, N, D]
    >>> stats = barlow_twins_stats(views)
    >>> stats.cross.shape
    (4, 4)
    >>> loss, aux = barlow_twins_from_stats(stats)
  """
  z = _two_views(views, "barlow_twins_stats", axis_name)
  z1, z2 = z[0], z[1]
  count = jnp.asarray(parallel.global_batch_size(z1.shape[0], axis_name), z1.dtype)
  if center:
    # The loss is exactly shift-invariant, so the shift needs no gradient.
    z1 = z1 - jax.lax.stop_gradient(parallel.batch_mean(z1, axis_name))
    z2 = z2 - jax.lax.stop_gradient(parallel.batch_mean(z2, axis_name))
  cross = z1.T @ z2
  if axis_name is not None:
    cross = jax.lax.psum(cross, axis_name)
  return BarlowTwinsStats(
      count=count,
      sum1=parallel.batch_sum(z1, axis_name),
      sum2=parallel.batch_sum(z2, axis_name),
      sumsq1=parallel.batch_sum(jnp.square(z1), axis_name),
      sumsq2=parallel.batch_sum(jnp.square(z2), axis_name),
      cross=cross,
  )


def barlow_twins_from_stats(
    stats: BarlowTwinsStats,
    *,
    lambd: float | jax.Array = 0.0051,
    eps: float = 1e-5,
    scale_loss: float | jax.Array = 1.0,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Barlow Twins loss from global-batch statistics.

  ::

    μ_v = Σz_v / N,   σ_v² = Σz_v² / N − μ_v²            (biased, as BatchNorm)
    c_ij = (Σ z1_i z2_j / N − μ1_i μ2_j) / sqrt((σ1_i² + eps)(σ2_j² + eps))
    L = scale_loss · [ Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij² ]

  which equals ``bn(z1)ᵀ bn(z2) / N`` of the official code exactly.

  Args:
    stats: :class:`BarlowTwinsStats` (global, centred or raw).
    lambd: off-diagonal weight λ (official ``--lambd 0.0051``).
    eps: BatchNorm epsilon added to the variance (PyTorch default 1e-5).
    scale_loss: overall factor (1.0 in the current official code; 0.024 in the
      first release, see the module docstring).

  Returns:
    ``(loss, aux)``; ``aux`` holds the unweighted ``'on_diag'`` Σ(1−c_ii)²,
    ``'off_diag'`` Σ_{i≠j} c_ij² and ``'mean_diag_corr'`` mean c_ii (scalars).
  """
  if stats.cross.ndim != 2 or stats.cross.shape[0] != stats.cross.shape[1]:
    raise ValueError(f"stats.cross must be square [D, D], got {stats.cross.shape}.")
  n = stats.count
  mu1, mu2 = stats.sum1 / n, stats.sum2 / n
  # Clamp tiny negative variances from float cancellation.
  var1 = jnp.maximum(stats.sumsq1 / n - jnp.square(mu1), 0.0)
  var2 = jnp.maximum(stats.sumsq2 / n - jnp.square(mu2), 0.0)
  cov = stats.cross / n - jnp.outer(mu1, mu2)
  c = cov * jax.lax.rsqrt(var1 + eps)[:, None] * jax.lax.rsqrt(var2 + eps)[None, :]
  eye = jnp.eye(c.shape[0], dtype=bool)
  on_diag = jnp.sum(jnp.square(1.0 - jnp.diagonal(c)))
  # Mask rather than subtract the diagonal: avoids cancellation in float32.
  off_diag = jnp.sum(jnp.square(jnp.where(eye, 0.0, c)))
  loss = scale_loss * (on_diag + lambd * off_diag)
  aux = {
      "on_diag": jax.lax.stop_gradient(on_diag),
      "off_diag": jax.lax.stop_gradient(off_diag),
      "mean_diag_corr": jax.lax.stop_gradient(jnp.mean(jnp.diagonal(c))),
  }
  return loss, aux


def barlow_twins_loss(
    views: ViewsLike,
    *,
    lambd: float | jax.Array = 0.0051,
    eps: float = 1e-5,
    scale_loss: float | jax.Array = 1.0,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """Barlow Twins loss of two views (Eq. 1 of the paper, official ``main.py``).

  ``L = scale_loss · [Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²]`` with ``C`` the
  cross-correlation of the per-dimension standardised (global-batch mean,
  biased variance, ``eps``) embeddings divided by the global N. Computed as
  ``barlow_twins_from_stats(barlow_twins_stats(views))``; see those functions
  for the formula, the module docstring for official-code defaults and
  ``docs/methods/barlow_twins.md``.

  Args:
    views: ``[2, N, D]`` projector outputs of the two views, or ``(z1, z2)``
      (local shard of axis 1 under ``shard_map``).
    lambd: off-diagonal weight λ (default 0.0051, official).
    eps: BatchNorm epsilon (default 1e-5).
    scale_loss: overall factor (default 1.0, current official code).
    axis_name: batch mesh axis inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)`` as :func:`barlow_twins_from_stats`.

  Example:
    >>> views = jax.random.normal(jax.random.key(0), (2, 16, 8))   # [V=2, N, D]
    >>> loss, aux = barlow_twins_loss(views)
    >>> loss.shape, sorted(aux)
    ((), ['mean_diag_corr', 'off_diag', 'on_diag'])
  """
  stats = barlow_twins_stats(views, axis_name=axis_name)
  return barlow_twins_from_stats(stats, lambd=lambd, eps=eps, scale_loss=scale_loss)
