"""k-means clustering (k-means++ seeding, Lloyd iterations) in pure JAX.

Used to turn continuous embeddings into discrete symbols for the discrete PID
estimators (`ssljax.pid.batch.discrete_batch_pid`, the "CVX" estimator of Liang
et al. 2023, arXiv 2302.12247) and for PID-SSL pseudo-labels (Mohamadi et al.
2024, arXiv 2412.02121: k-means++ with K = number of classes; ``docs/pid.md``).

Every reduction over the batch goes through `ssljax.parallel`, so
``kmeans(x, axis_name=None)`` on the global batch and
``kmeans(x_shard, axis_name='data')`` per shard inside ``jax.shard_map`` give
the same centroids: per-cluster sums and counts (K×D) are ``psum``-ed, never
the N×D embeddings. The k-means++ sampling noise is keyed by the *global* row
index (``jax.random.fold_in(key, row)``), so seeding does not depend on the
sharding either.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel

__all__ = ["KMeansResult", "kmeans", "kmeans_plusplus_init", "kmeans_assign", "kmeans_inertia"]


class KMeansResult(NamedTuple):
  """Output of `kmeans`.

  Attributes:
    centroids: ``[K, D]`` cluster centres (replicated across devices).
    assignments: ``[N]`` int32 cluster index of each (local) row.
    inertia: scalar global sum of squared distances to the assigned centroid
      (differentiable in ``x`` with the centroids held fixed).
    iterations: number of Lloyd iterations run.
  """

  centroids: jax.Array
  assignments: jax.Array
  inertia: jax.Array
  iterations: jax.Array


def _check_x(x: jax.Array, num_clusters: int) -> None:
  if jnp.ndim(x) != 2:
    raise ValueError(f"x must be [N, D] embeddings, got shape {jnp.shape(x)}; flatten extra axes.")
  if not isinstance(num_clusters, int) or num_clusters < 1:
    raise ValueError(f"num_clusters must be a positive Python int, got {num_clusters!r}.")


def _sq_dists(x: jax.Array, c: jax.Array) -> jax.Array:
  """``[N, K]`` squared Euclidean distances, clipped at 0 against rounding."""
  d = (jnp.sum(x * x, 1)[:, None] - 2.0 * x @ c.T + jnp.sum(c * c, 1)[None, :])
  return jnp.maximum(d, 0.0)


def _batch_max(x: jax.Array, axis_name: Optional[str]) -> jax.Array:
  m = jnp.max(x)
  return m if axis_name is None else lax.pmax(m, axis_name)


def _batch_min(x: jax.Array, axis_name: Optional[str]) -> jax.Array:
  m = jnp.min(x)
  return m if axis_name is None else lax.pmin(m, axis_name)


def kmeans_assign(x: jax.Array, centroids: jax.Array) -> jax.Array:
  """Index of the nearest centroid for each row: ``argmin_k ‖x_n − c_k‖²``.

  Args:
    x: ``[N, D]``.
    centroids: ``[K, D]``.
  Returns:
    ``[N]`` int32 (ties go to the lowest index).
  """
  return jnp.argmin(_sq_dists(x, centroids), axis=1).astype(jnp.int32)


def kmeans_inertia(x: jax.Array, centroids: jax.Array, *,
                   axis_name: Optional[str] = None) -> jax.Array:
  """Global k-means objective ``Σ_n min_k ‖x_n − c_k‖²`` (sum over the global batch).

  Differentiable in ``x`` and ``centroids`` (the ``min`` picks the nearest
  centroid). ``psum``-ed over ``axis_name``.
  """
  return parallel.batch_sum(jnp.min(_sq_dists(x, centroids), axis=1), axis_name)


def kmeans_plusplus_init(x: jax.Array, num_clusters: int, *, key: jax.Array,
                         axis_name: Optional[str] = None) -> jax.Array:
  """k-means++ seeding (Arthur and Vassilvitskii 2007, "k-means++: the advantages
  of careful seeding", SODA, Sec. 2.2).

  The first centre is a uniformly random row; each next centre is a row drawn
  with probability ∝ ``D(x)²``, its squared distance to the nearest centre
  chosen so far. Sampling uses the Gumbel-max trick with noise
  ``gumbel(fold_in(key, global_row))``, an arg-max over the global batch
  (``pmax``, ties to the lowest global row via ``pmin``) and a ``psum`` to
  broadcast the chosen row, so the result is identical on one device and
  sharded. scikit-learn's default is the *greedy* variant (2 + ⌊ln K⌋ trials per
  centre, keeping the best); this is the original single-trial rule.

  Args:
    x: ``[N, D]`` local rows (the global batch when ``axis_name`` is None).
    num_clusters: K (static).
    key: PRNG key (replicated across devices).
    axis_name: mapped batch axis for cross-device reductions, or None.
  Returns:
    ``[K, D]`` initial centroids (replicated).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> z = jax.random.normal(jax.random.key(1), (100, 8))
    >>> kmeans_plusplus_init(z, 10, key=jax.random.key(0)).shape
    (10, 8)
  """
  _check_x(x, num_clusters)
  x = lax.stop_gradient(x)
  n, d = x.shape
  rows = parallel.local_row_offset(n, axis_name) + jnp.arange(n)
  big = jnp.iinfo(jnp.int32).max

  def pick(k, log_w, centroids):
    # Gumbel-max over the global batch: argmax_n log w_n + G_n samples n ∝ w_n.
    g = jax.vmap(lambda r: jax.random.gumbel(jax.random.fold_in(jax.random.fold_in(key, k), r),
                                             dtype=x.dtype))(rows)
    score = log_w + g
    best = _batch_max(score, axis_name)
    winner = _batch_min(jnp.where(score == best, rows, big), axis_name)
    chosen = parallel.batch_sum(jnp.where((rows == winner)[:, None], x, 0.0), axis_name)
    return centroids.at[k].set(chosen)

  centroids = pick(0, jnp.zeros((n,), x.dtype), jnp.zeros((num_clusters, d), x.dtype))
  min_d2 = _sq_dists(x, centroids[:1])[:, 0]

  def body(k, state):
    centroids, min_d2 = state
    # Rows already at a centre get −inf weight; if every row is (fewer distinct
    # points than K) fall back to uniform so a centre is still chosen.
    any_pos = _batch_max(jnp.where(min_d2 > 0, 1.0, 0.0), axis_name) > 0
    log_w = jnp.where(min_d2 > 0, jnp.log(jnp.where(min_d2 > 0, min_d2, 1.0)), -jnp.inf)
    log_w = jnp.where(any_pos, log_w, 0.0)
    centroids = pick(k, log_w, centroids)
    min_d2 = jnp.minimum(min_d2, _sq_dists(x, centroids[k][None])[:, 0])
    return centroids, min_d2

  centroids, _ = lax.fori_loop(1, num_clusters, body, (centroids, min_d2))
  return centroids


def kmeans(x: jax.Array, num_clusters: int, *, key: jax.Array, max_iters: int = 300,
           tol: float = 1e-4, init: Optional[jax.Array] = None,
           axis_name: Optional[str] = None) -> KMeansResult:
  """k-means: k-means++ seeding, then Lloyd iterations until the centres settle.

  Lloyd's algorithm (Lloyd 1982): assign every row to its nearest centre, move
  each centre to the mean of its rows (a centre with no rows stays put), repeat.
  Minimises the inertia ``Σ_n min_k ‖x_n − c_k‖²``. Stops when the total squared
  centre shift ``Σ_k ‖c_k^new − c_k‖² ≤ tol · mean_j Var(x_j)`` or after
  ``max_iters`` iterations; these are scikit-learn's ``KMeans`` defaults
  (``max_iter=300``, ``tol=1e-4`` relative to the mean feature variance),
  with one initialisation (sklearn: ``n_init='auto'`` = 1 for k-means++).
  Per-cluster sums and counts are ``psum``-ed over ``axis_name``.

  The clustering itself is not differentiated (inputs are ``stop_gradient``-ed);
  ``inertia`` is recomputed from ``x`` with the final centres fixed, so its
  gradient is ``2(x_n − c_{k(n)})``.

  Args:
    x: ``[N, D]`` local rows (global batch when ``axis_name`` is None).
    num_clusters: K (static).
    key: PRNG key for the k-means++ seeding (replicated across devices).
    max_iters: maximum Lloyd iterations.
    tol: relative centre-shift tolerance (see above).
    init: optional ``[K, D]`` initial centres (skips k-means++; e.g. the previous
      epoch's centres, which also keeps cluster ids stable between refreshes).
    axis_name: mapped batch axis, or None.
  Returns:
    `KMeansResult`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> centres = jnp.array([[0., 0.], [10., 0.], [0., 10.]])
    >>> labels = jnp.arange(30) % 3
    >>> z = centres[labels] + 0.1 * jax.random.normal(jax.random.key(1), (30, 2))
    >>> res = kmeans(z, 3, key=jax.random.key(0))
    >>> pseudo_labels = res.assignments   # [N] ids, a relabelling of the true clusters
    >>> len(set(zip(pseudo_labels.tolist(), labels.tolist())))
    3
  """
  _check_x(x, num_clusters)
  xs = lax.stop_gradient(x)
  if init is None:
    centroids = kmeans_plusplus_init(xs, num_clusters, key=key, axis_name=axis_name)
  else:
    if jnp.shape(init) != (num_clusters, x.shape[1]):
      raise ValueError(f"init must have shape {(num_clusters, x.shape[1])}, got {jnp.shape(init)}.")
    centroids = lax.stop_gradient(jnp.asarray(init, x.dtype))
  mean = parallel.batch_mean(xs, axis_name)
  var = parallel.batch_mean((xs - mean) ** 2, axis_name)
  threshold = tol * jnp.mean(var)

  def step(centroids):
    onehot = jax.nn.one_hot(kmeans_assign(xs, centroids), num_clusters, dtype=xs.dtype)
    sums = _psum(onehot.T @ xs, axis_name)
    counts = _psum(onehot.sum(0), axis_name)
    new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centroids)
    return new

  def body(state):
    centroids, _, it = state
    new = step(centroids)
    return new, jnp.sum((new - centroids) ** 2), it + 1

  def cond(state):
    _, shift, it = state
    return jnp.logical_and(it < max_iters, shift > threshold)

  state = (centroids, jnp.asarray(jnp.inf, x.dtype), jnp.asarray(0, jnp.int32))
  centroids, _, it = lax.while_loop(cond, body, state)
  centroids = lax.stop_gradient(centroids)
  assignments = kmeans_assign(xs, centroids)
  chosen = centroids[assignments]
  inertia = parallel.batch_sum(jnp.sum((x - chosen) ** 2, axis=1), axis_name)
  return KMeansResult(centroids=centroids, assignments=assignments, inertia=inertia,
                      iterations=it)


def _psum(x: jax.Array, axis_name: Optional[str]) -> jax.Array:
  # `x` is already summed over the local rows (a matmul); only the cross-device
  # part remains: batch_sum over a singleton axis is exactly that psum.
  return parallel.batch_sum(x[None], axis_name)
