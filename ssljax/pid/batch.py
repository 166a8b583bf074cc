"""Batch PID estimators for embeddings: Gaussian (projected) and discrete (k-means).

Given two views' embeddings ``z1: [N, D1]``, ``z2: [N, D2]`` and a target
``t: [N]`` (labels or pseudo-labels), estimate the PID of I(T; Z1, Z2), the
quantity PID-SSL (Mohamadi, Doretto and Adjeroh 2024, arXiv 2412.02121) reasons
about. Two estimators (background and choices: ``docs/pid.md``):

* `gaussian_batch_pid`: project each view to ``dim`` dimensions (PCA or a random
  orthonormal projection), treat the projected features as Gaussian and compute
  MMI atoms from log-determinants of covariance matrices (nats). Needs only
  D×D / (2·dim)×(2·dim) statistics, ``psum``-ed across devices
  (`gaussian_pid_stats` → `gaussian_pid_from_stats`).
* `discrete_batch_pid`: k-means each view to K symbols (`ssljax.pid.kmeans`),
  form the empirical pmf of (symbol1, symbol2, t) (K×K×C counts, ``psum``-ed)
  and run a discrete PID (BROJA by default, bits): Liang et al. 2023 (NeurIPS,
  arXiv 2302.12247) "CVX" estimator, with our BROJA solver instead of CVXPY.

Both are analysis tools (they are not PID-SSL's training loss: the paper uses
PID as motivation, not as an estimated quantity); gradients flow through the Gaussian one
(in z, with the PCA basis held fixed), not through k-means assignments.

**Finite-sample bias.** Plug-in estimates are biased upwards. For the discrete
estimator the first-order (Miller–Madow; Panzeri and Treves 1996) bias of a
plug-in MI between alphabets of sizes |X| and |Y| is ``(|X|−1)(|Y|−1) /
(2N ln 2)`` bits (`plugin_mi_bias`); for I(T; X1, X2) with K symbols per view
that is ``(K²−1)(C−1)/(2N ln 2)``, which inflates the synergy (e.g. K = C = 10,
N = 10⁴: ≈ 0.064 bits). Keep N ≫ K²·C. For the Gaussian estimator the plug-in
bias of ``I(A;B)`` is ≈ ``d_A·d_B / (2N)`` nats (from E log det of a Wishart
matrix), hence the projection to small ``dim``; keep N ≫ dim².
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.pid.atoms import PIDAtoms, atoms_from_redundancy, nats_to
from ssljax.pid.discrete import pid_broja, pid_imin, pid_mmi
from ssljax.pid.gaussian import gaussian_pid_mmi, logdet_psd
from ssljax.pid.kmeans import kmeans

__all__ = [
    "view_projection", "GaussianPIDStats", "gaussian_pid_stats", "gaussian_pid_from_stats",
    "gaussian_batch_pid", "empirical_joint_pmf", "discrete_batch_pid", "DiscreteBatchPID",
    "plugin_mi_bias",
]

_TARGETS = ("class_conditional", "onehot", "gaussian")


def plugin_mi_bias(num_x: int, num_y: int, n, *, base: float = 2.0):
  """First-order bias of the plug-in mutual information, ``(|X|−1)(|Y|−1)/(2N)`` nats.

  Miller (1955) / Panzeri and Treves (1996, Network 7:87): for N i.i.d. samples
  and alphabets of sizes |X|, |Y| with all cells populated,
  ``E[Î] − I ≈ (|X|−1)(|Y|−1) / (2N)`` nats. Units: **bits** by default
  (``base=2``), i.e. ``/(2N ln 2)``. It overstates the bias when many cells are
  empty (use the number of occupied cells then).

  Example:
    >>> round(plugin_mi_bias(100, 10, 10_000), 4)   # I(T; X1,X2), K=10 per view, C=10: bits
    0.0643
  """
  return nats_to((num_x - 1) * (num_y - 1) / (2.0 * n), base)


# ---------------------------------------------------------------------------
# Gaussian estimator.
# ---------------------------------------------------------------------------

def _check_views(z1, z2, t):
  if jnp.ndim(z1) != 2 or jnp.ndim(z2) != 2:
    raise ValueError(f"z1 and z2 must be [N, D] embeddings, got shapes {jnp.shape(z1)} and "
                     f"{jnp.shape(z2)}.")
  if z1.shape[0] != z2.shape[0] or jnp.shape(t)[0] != z1.shape[0]:
    raise ValueError(f"z1, z2 and t must share the batch size N, got {z1.shape[0]}, "
                     f"{z2.shape[0]} and {jnp.shape(t)[0]}.")


def view_projection(z: jax.Array, dim: Optional[int], *, method: str = "pca",
                    key: Optional[jax.Array] = None,
                    axis_name: Optional[str] = None) -> jax.Array:
  """A ``[D, k]`` projection of one view to ``k = min(dim, D)`` dimensions.

  * ``'pca'``: the top-k eigenvectors of the global batch covariance (a D×D
    statistic, ``psum``-ed over ``axis_name``). The basis is ``stop_gradient``-ed:
    eigenvector derivatives blow up at near-degenerate eigenvalues, so gradients
    flow through the projected features only.
  * ``'random'``: a random orthonormal basis (QR of a Gaussian matrix) from
    ``key``; independent of the data (Johnson–Lindenstrauss style), so cheap and
    unbiased, but it keeps less of the signal than PCA at small k.
  * ``dim=None`` or ``method='none'``: the identity (no projection).

  Mutual information is invariant to invertible maps, so any projection with
  k = D changes nothing; with k < D it keeps the information in the span.

  Args:
    z: ``[N, D]`` local rows.
    dim: target dimension k (static) or None.
    method: ``'pca'`` | ``'random'`` | ``'none'``.
    key: PRNG key, needed for ``'random'``.
    axis_name: mapped batch axis or None.
  Returns:
    ``[D, k]`` matrix with orthonormal columns.

  Example:
    >>> import jax
    >>> z1 = jax.random.normal(jax.random.key(0), (64, 32))
    >>> u1 = z1 @ view_projection(z1, 16)   # PCA scores
    >>> u1.shape
    (64, 16)
  """
  d = z.shape[1]
  if dim is None or method == "none" or dim >= d:
    return jnp.eye(d, dtype=z.dtype)
  if method == "random":
    if key is None:
      raise ValueError("projection='random' needs a PRNG key: pass key=jax.random.key(...).")
    q, _ = jnp.linalg.qr(jax.random.normal(key, (d, dim), dtype=z.dtype))
    return q
  if method != "pca":
    raise ValueError(f"projection method {method!r}; expected 'pca', 'random' or 'none'.")
  zs = lax.stop_gradient(z)
  zc = zs - parallel.batch_mean(zs, axis_name)
  # zcᵀzc is already a sum over the local rows; batch_sum over a singleton axis
  # adds the cross-device part (a D×D psum).
  cov = parallel.batch_sum((zc.T @ zc)[None], axis_name) / parallel.global_batch_size(
      z.shape[0], axis_name)
  _, vecs = jnp.linalg.eigh(cov)
  return lax.stop_gradient(vecs[:, ::-1][:, :dim])


@functools.partial(jax.tree_util.register_dataclass, data_fields=["count", "mean", "scatter"],
                   meta_fields=["d1", "d2"])
@dataclasses.dataclass(frozen=True)
class GaussianPIDStats:
  """Sufficient statistics for `gaussian_pid_from_stats` (global, replicated).

  A pytree whose leaves are the three arrays; ``d1``, ``d2`` are static.

  Attributes:
    count: ``[C]`` examples per class (``[1]`` for a continuous target).
    mean: ``[C, d]`` per-class mean of the centred features ``u = [u1 | u2 | (t)]``.
    scatter: ``[C, d, d]`` per-class second moment ``Σ_n u uᵀ`` of centred features.
    d1: static dimension of view 1's block; ``d2`` likewise.
  """

  count: jax.Array
  mean: jax.Array
  scatter: jax.Array
  d1: int
  d2: int


def gaussian_pid_stats(u1: jax.Array, u2: jax.Array, t: jax.Array, *,
                       num_classes: Optional[int] = None,
                       axis_name: Optional[str] = None) -> GaussianPIDStats:
  """Per-class counts, means and scatter matrices of ``u = [u1 | u2]`` (global).

  With ``num_classes`` (integer labels ``t: [N]``) the statistics are per class;
  without it, ``t: [N]`` or ``[N, dt]`` is a continuous target appended to ``u``
  (one "class"). Features are centred by the global mean first (two ``psum``
  passes, for numerical accuracy). Everything is summed with
  `ssljax.parallel.batch_sum`, so per-shard calls with ``axis_name`` give the
  global statistics; this is the path to use in a sharded train step (C·d²
  numbers cross devices, not N·D embeddings).

  Args:
    u1: ``[N, d1]`` (already projected) view-1 features.
    u2: ``[N, d2]`` view-2 features.
    t: ``[N]`` int labels in ``[0, num_classes)``, or a float target.
    num_classes: C for integer labels (static), or None for a continuous target.
    axis_name: mapped batch axis or None.
  Returns:
    `GaussianPIDStats`.

  Example (per shard inside ``jax.shard_map``; the statistics come out global)::

    >>> import functools, jax, jax.numpy as jnp
    >>> from jax.sharding import PartitionSpec as P
    >>> from ssljax import parallel
    >>> u1, u2 = jax.random.normal(jax.random.key(0), (2, 64, 3))
    >>> labels = jnp.arange(64) % 4
    >>> per_shard = functools.partial(gaussian_pid_stats, num_classes=4, axis_name="data")
    >>> stats = jax.shard_map(per_shard, mesh=parallel.make_data_mesh(),
    ...                       in_specs=P("data"), out_specs=P())(u1, u2, labels)
    >>> stats.scatter.shape   # [C, d1 + d2, d1 + d2]
    (4, 6, 6)
    >>> atoms = gaussian_pid_from_stats(stats)
  """
  _check_views(u1, u2, t)
  u = jnp.concatenate([u1, u2], axis=1)
  if num_classes is None:
    tt = jnp.asarray(t, u.dtype)
    u = jnp.concatenate([u, tt.reshape(tt.shape[0], -1)], axis=1)
    onehot = jnp.ones((u.shape[0], 1), u.dtype)
  else:
    if jnp.issubdtype(jnp.asarray(t).dtype, jnp.floating):
      raise ValueError("t must hold integer class labels when num_classes is given; pass "
                       "num_classes=None for a continuous (Gaussian) target.")
    onehot = jax.nn.one_hot(t, num_classes, dtype=u.dtype)
  u = u - parallel.batch_mean(u, axis_name)
  count = parallel.batch_sum(onehot, axis_name)
  # Local sums over rows by einsum; batch_sum over a singleton axis adds the
  # cross-device part (C·d and C·d² numbers).
  sums = parallel.batch_sum(jnp.einsum("nc,ni->ci", onehot, u)[None], axis_name)
  scatter = parallel.batch_sum(jnp.einsum("nc,ni,nj->cij", onehot, u, u)[None], axis_name)
  mean = sums / jnp.maximum(count, 1.0)[:, None]
  return GaussianPIDStats(count=count, mean=mean, scatter=scatter, d1=u1.shape[1], d2=u2.shape[1])


def gaussian_pid_from_stats(stats: GaussianPIDStats, *, target: str = "class_conditional",
                            ridge: float = 1e-4, base: float = math.e) -> PIDAtoms:
  """Gaussian MMI PID of (U1, U2; T) from `gaussian_pid_stats` (nats by default).

  All covariances are first standardised by the total standard deviations
  (mutual information is invariant to that; it makes ``ridge`` relative to unit
  variance), then ``Σ ← Σ + ridge·I`` before every log-determinant.

  ``target``:

  * ``'class_conditional'`` (default; integer labels): Gaussian class-conditional
    model ``U | T=c ~ N(μ_c, Σ_c)``; for any block S,
    ``I(T; U_S) ≈ ½ [log det Σ_S − Σ_c π_c log det Σ_{c,S}]``, i.e.
    ``H_Gauss(U_S) − H(U_S | T)``. Because the Gaussian maximises entropy for a
    given covariance, this is an **upper bound** on I(T;U_S) under that model.
    It is not bounded by H(T): for nearly separable classes it grows like
    log(between/within spread); use the discrete estimator then. Classes need
    ≫ d examples each (the ridge keeps small classes finite).
  * ``'onehot'`` (integer labels): T is encoded as a one-hot vector (first C−1
    columns; the last is linearly dependent) and (U1, U2, e(T)) is treated as
    jointly Gaussian with the moment-matched covariance; the MI then depends only
    on the canonical correlations between U_S and the class indicators.
  * ``'gaussian'`` (continuous target from ``num_classes=None``): the joint
    covariance of (U1, U2, T) goes to `ssljax.pid.gaussian.gaussian_pid_mmi`.

  Atoms: ``R = min(I(T;U1), I(T;U2))`` etc. (MMI). This is exact only for a
  jointly Gaussian system with a scalar target (Barrett 2015); for a discrete or
  vector target it is the MMI approximation, i.e. the largest redundancy and
  synergy any non-negative PID allows (see `gaussian_pid_mmi`).

  Args:
    stats: from `gaussian_pid_stats`.
    target: ``'class_conditional'`` | ``'onehot'`` | ``'gaussian'``.
    ridge: relative diagonal ridge (after standardisation).
    base: ``math.e`` (nats, default) or 2 (bits).
  Returns:
    `PIDAtoms`.

  Example:
    >>> import jax
    >>> u1, u2, noise = jax.random.normal(jax.random.key(0), (3, 4096, 1))
    >>> y = (u1 + u2 + noise)[:, 0]   # float target: Y = X1 + X2 + N
    >>> atoms = gaussian_pid_from_stats(gaussian_pid_stats(u1, u2, y), target="gaussian")
    >>> [round(float(v), 1) for v in atoms]   # ≈ (½ ln 1.5, 0, 0, ½ ln 2) nats
    [0.2, 0.0, 0.0, 0.3]
  """
  if target not in _TARGETS:
    raise ValueError(f"target={target!r}; expected one of {_TARGETS}.")
  d1, d2 = stats.d1, stats.d2
  n_cls = stats.count.shape[0]
  if (target == "gaussian") != (n_cls == 1 and stats.mean.shape[1] > d1 + d2):
    raise ValueError(
        f"target={target!r} does not match the statistics: use target='gaussian' with stats from "
        f"num_classes=None (continuous t), and 'class_conditional'/'onehot' with integer labels.")
  n = jnp.sum(stats.count)
  # Total covariance (features are globally centred, so the total mean is 0).
  total = jnp.sum(stats.scatter, axis=0) / n
  if target == "gaussian":
    dim = total.shape[0]
    cov = _standardise(total, total)
    idx_y = tuple(range(d1 + d2, dim))
    return gaussian_pid_mmi(cov, tuple(range(d1)), tuple(range(d1, d1 + d2)), idx_y,
                            ridge=ridge, base=base)
  pi = stats.count / n
  if target == "onehot":
    # Joint covariance of (u, e_1..e_{C-1}): Cov(u, e_c) = E[u e_c] = π_c μ_c (u is
    # centred), Cov(e_c, e_c') = π_c δ − π_c π_c'.
    cross = (pi[:, None] * stats.mean)[:-1].T  # [d, C-1]
    ee = jnp.diag(pi[:-1]) - pi[:-1, None] * pi[None, :-1]
    cov = jnp.block([[total, cross], [cross.T, ee]])
    cov = _standardise(cov, cov)
    idx_y = tuple(range(d1 + d2, d1 + d2 + n_cls - 1))
    return gaussian_pid_mmi(cov, tuple(range(d1)), tuple(range(d1, d1 + d2)), idx_y,
                            ridge=ridge, base=base)
  # class_conditional: within-class covariances Σ_c = S_c/n_c − μ_c μ_cᵀ.
  cnt = jnp.maximum(stats.count, 1.0)[:, None, None]
  within = stats.scatter / cnt - stats.mean[:, :, None] * stats.mean[:, None, :]
  total_s = _standardise(total, total)
  within_s = jax.vmap(lambda w: _standardise(w, total))(within)
  # Absent classes (π_c = 0) get the identity so their (zero-weighted) logdet is finite.
  eye = jnp.eye(total.shape[0], dtype=total.dtype)
  within_s = jnp.where((stats.count > 0)[:, None, None], within_s, eye)

  def mi(idx):
    ix = jnp.asarray(idx)
    blk = lambda m: m[ix[:, None], ix[None, :]]
    h_tot = logdet_psd(blk(total_s), ridge=ridge)
    h_cls = jax.vmap(lambda w: logdet_psd(blk(w), ridge=ridge))(within_s)
    return 0.5 * (h_tot - jnp.sum(pi * h_cls))

  i1 = mi(tuple(range(d1)))
  i2 = mi(tuple(range(d1, d1 + d2)))
  i12 = mi(tuple(range(d1 + d2)))
  atoms = atoms_from_redundancy(jnp.minimum(i1, i2), i1, i2, i12)
  return jax.tree.map(lambda v: nats_to(v, base), atoms)


def _standardise(m: jax.Array, ref: jax.Array) -> jax.Array:
  # D m D with D = diag(ref)^(-1/2); zero-variance features are left unscaled.
  v = jnp.diagonal(ref)
  s = jnp.where(v > 0, lax.rsqrt(jnp.where(v > 0, v, 1.0)), 1.0)
  return m * s[:, None] * s[None, :]


def gaussian_batch_pid(z1: jax.Array, z2: jax.Array, t: jax.Array, *,
                       num_classes: Optional[int] = None, dim: Optional[int] = 16,
                       projection: str = "pca", key: Optional[jax.Array] = None,
                       target: Optional[str] = None, ridge: float = 1e-4, base: float = math.e,
                       axis_name: Optional[str] = None) -> PIDAtoms:
  """Gaussian batch PID of I(T; Z1, Z2) after projecting each view to ``dim`` dims.

  Pipeline: `view_projection` of each view (PCA by default, basis fixed for the
  gradient) → `gaussian_pid_stats` (per-class moments, ``psum``-ed) →
  `gaussian_pid_from_stats` (MMI atoms from log-determinants). Units: **nats**
  by default. Valid when N ≫ dim (plug-in bias ≈ d_A·d_B/(2N) nats per MI;
  16–64 dims and a ridge are sensible). The Gaussian PID is Barrett 2015; the
  projection-plus-ridge recipe is ssljax's, not a published estimator's
  (``docs/pid.md``).

  Args:
    z1: ``[N, D1]`` view-1 embeddings (local rows under ``axis_name``).
    z2: ``[N, D2]`` view-2 embeddings.
    t: ``[N]`` integer labels / pseudo-labels (with ``num_classes``) or a float
      target ``[N]`` / ``[N, dt]`` (``num_classes=None``).
    num_classes: C (static) for integer labels.
    dim: projected dimension per view (static; None = no projection).
    projection: ``'pca'`` | ``'random'`` | ``'none'`` (see `view_projection`).
    key: PRNG key for ``projection='random'`` (split between the two views).
    target: ``'class_conditional'`` (default for labels) | ``'onehot'`` |
      ``'gaussian'`` (default and only choice for a float target).
    ridge: relative ridge after standardisation.
    base: ``math.e`` (nats) or 2 (bits).
    axis_name: mapped batch axis, or None on the global batch.
  Returns:
    `PIDAtoms`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> labels = jnp.arange(512) % 4
    >>> z1, z2 = jax.random.normal(jax.random.key(0), (2, 512, 32))
    >>> z1 = z1.at[:, 0].add(3.0 * labels)   # only view 1 carries the label
    >>> atoms = gaussian_batch_pid(z1, z2, labels, num_classes=4, dim=4)
    >>> bool(atoms.unique1 > 1.0), bool(atoms.unique2 < 0.1)   # nats
    (True, True)
  """
  _check_views(z1, z2, t)
  if target is None:
    target = "gaussian" if num_classes is None else "class_conditional"
  if (num_classes is None) != (target == "gaussian"):
    raise ValueError(f"target={target!r} with num_classes={num_classes!r}: integer labels need "
                     f"num_classes and target 'class_conditional' or 'onehot'; a continuous "
                     f"target needs num_classes=None and target='gaussian'.")
  k1 = k2 = None
  if key is not None:
    k1, k2 = jax.random.split(key)
  p1 = view_projection(z1, dim, method=projection, key=k1, axis_name=axis_name)
  p2 = view_projection(z2, dim, method=projection, key=k2, axis_name=axis_name)
  stats = gaussian_pid_stats(z1 @ p1, z2 @ p2, t, num_classes=num_classes, axis_name=axis_name)
  return gaussian_pid_from_stats(stats, target=target, ridge=ridge, base=base)


# ---------------------------------------------------------------------------
# Discrete estimator.
# ---------------------------------------------------------------------------

def empirical_joint_pmf(s1: jax.Array, s2: jax.Array, t: jax.Array, *, sizes: tuple[int, int, int],
                        axis_name: Optional[str] = None) -> jax.Array:
  """Empirical pmf ``p[s1, s2, t]`` of three integer symbol arrays (global batch).

  Counts by ``segment_sum`` on the flat cell index, ``psum``-ed over
  ``axis_name`` (|X1|·|X2|·|Y| numbers cross devices), divided by the global N.

  Args:
    s1, s2, t: ``[N]`` ints in ``[0, sizes[i])``.
    sizes: static ``(|X1|, |X2|, |Y|)``.
    axis_name: mapped batch axis or None.
  Returns:
    ``[|X1|, |X2|, |Y|]`` float pmf (default float dtype).

  Example:
    >>> import jax.numpy as jnp
    >>> from ssljax.pid import pid_broja
    >>> labels = jnp.arange(8) % 2
    >>> p = empirical_joint_pmf(labels, jnp.zeros(8, jnp.int32), labels, sizes=(2, 2, 2))
    >>> p.shape, round(float(p.sum()), 6)
    ((2, 2, 2), 1.0)
    >>> [round(float(v), 4) for v in pid_broja(p)]   # symbol 1 copies the label: U1 = 1 bit
    [0.0, 1.0, 0.0, 0.0]
  """
  n1, n2, ny = sizes
  flat = (jnp.asarray(s1) * n2 + jnp.asarray(s2)) * ny + jnp.asarray(t)
  ones = jnp.ones(flat.shape, jnp.result_type(float))
  counts = jax.ops.segment_sum(ones, flat, num_segments=n1 * n2 * ny)
  counts = parallel.batch_sum(counts[None], axis_name)
  return (counts / jnp.sum(counts)).reshape(n1, n2, ny)


class DiscreteBatchPID(NamedTuple):
  """Output of `discrete_batch_pid`.

  Attributes:
    atoms: `PIDAtoms` (bits by default).
    pmf: ``[K1, K2, C]`` empirical joint pmf of (symbol1, symbol2, t).
    symbols1: ``[N]`` k-means symbols of view 1 (local rows).
    symbols2: ``[N]`` k-means symbols of view 2.
  """

  atoms: PIDAtoms
  pmf: jax.Array
  symbols1: jax.Array
  symbols2: jax.Array


def discrete_batch_pid(z1: jax.Array, z2: jax.Array, t: jax.Array, *, key: jax.Array,
                       num_clusters: int, num_classes: int, measure: str = "broja",
                       kmeans_iters: int = 300, base: float = 2.0,
                       axis_name: Optional[str] = None) -> DiscreteBatchPID:
  """Discrete batch PID: k-means symbols per view, empirical pmf, discrete PID.

  ``x_i = kmeans(z_i, K)`` (k-means++ seeding from ``key``, Lloyd iterations;
  centroid sums ``psum``-ed), ``p[x1, x2, t]`` from counts, then `pid_broja`
  (default), `pid_imin` or `pid_mmi`. This is Liang et al. 2023 (arXiv
  2302.12247) "CVX" estimator (``pliang279/PID`` ``synthetic/rus.py``: cluster,
  build the distribution, solve BROJA), with our JAX BROJA solver in place of
  CVXPY (their code works in nats; default here is **bits**).

  Finite-sample caveat: the plug-in MIs are biased upwards by ≈
  ``(K−1)(C−1)/(2N ln 2)`` bits for I(T;X_i) and ``(K²−1)(C−1)/(2N ln 2)`` for
  I(T;X1,X2) (`plugin_mi_bias`), which mostly inflates the synergy; keep
  N ≫ K²·C. The result also depends on K (coarser symbols lose information).
  Not differentiable in z (hard assignments).

  Args:
    z1: ``[N, D1]``; z2: ``[N, D2]`` (local rows under ``axis_name``).
    t: ``[N]`` integer labels in ``[0, num_classes)``.
    key: PRNG key (split between the two k-means runs).
    num_clusters: K symbols per view (static).
    num_classes: C (static).
    measure: ``'broja'`` | ``'imin'`` | ``'mmi'``.
    kmeans_iters: maximum Lloyd iterations.
    base: 2 (bits, default) or ``math.e``.
    axis_name: mapped batch axis or None.
  Returns:
    `DiscreteBatchPID`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> labels = jnp.arange(200) % 2
    >>> z1 = 5.0 * labels[:, None] + 0.1 * jax.random.normal(jax.random.key(0), (200, 2))
    >>> z2 = jax.random.normal(jax.random.key(1), (200, 2))
    >>> out = discrete_batch_pid(z1, z2, labels, key=jax.random.key(2), num_clusters=2,
    ...                          num_classes=2)
    >>> out.pmf.shape, round(float(out.atoms.unique1), 1)   # view 1 determines the label
    ((2, 2, 2), 1.0)
  """
  _check_views(z1, z2, t)
  fns = {"broja": pid_broja, "imin": pid_imin, "mmi": pid_mmi}
  if measure not in fns:
    raise ValueError(f"measure={measure!r}; expected one of {sorted(fns)}.")
  k1, k2 = jax.random.split(key)
  s1 = kmeans(z1, num_clusters, key=k1, max_iters=kmeans_iters, axis_name=axis_name).assignments
  s2 = kmeans(z2, num_clusters, key=k2, max_iters=kmeans_iters, axis_name=axis_name).assignments
  pmf = empirical_joint_pmf(s1, s2, t, sizes=(num_clusters, num_clusters, num_classes),
                            axis_name=axis_name)
  return DiscreteBatchPID(atoms=fns[measure](pmf, base=base), pmf=pmf, symbols1=s1, symbols2=s2)
