"""Gaussian entropy, mutual information and the closed-form Gaussian MMI PID.

All values are in **nats** by default (``base=math.e``); pass ``base=2`` for
bits. Log-determinants use a Cholesky factorisation of ``Σ + ridge·I``, so
they are differentiable (``jax.grad``) and ``jax.jit`` / ``jax.vmap``
compatible. Index arguments (``idx_a`` …) are static Python sequences of ints.

For jointly Gaussian variables with covariance Σ and disjoint index blocks A, B::

  H(A)   = ½ log det(2πe Σ_AA)
  I(A;B) = ½ [log det Σ_AA + log det Σ_BB − log det Σ_{A∪B}]

(Cover and Thomas, Elements of Information Theory, 2nd ed., Thm. 8.4.1 and
§8.5; the Gaussian PID is Barrett 2015, see ``docs/pid.md``).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from ssljax.pid.atoms import PIDAtoms, atoms_from_redundancy, nats_to

__all__ = ["logdet_psd", "gaussian_entropy", "gaussian_mi", "gaussian_pid_mmi"]


def _check_cov(cov: jax.Array) -> None:
  if jnp.ndim(cov) != 2 or jnp.shape(cov)[0] != jnp.shape(cov)[1]:
    raise ValueError(f"cov must be a square [D, D] covariance matrix, got shape {jnp.shape(cov)}.")


def _as_index(idx: Sequence[int] | int, dim: int, name: str) -> tuple[int, ...]:
  if isinstance(idx, int):
    idx = (idx,)
  try:
    idx = tuple(int(i) for i in idx)
  except TypeError as e:  # traced or non-integer indices
    raise ValueError(f"{name} must be a static sequence of ints (Python ints, not a traced "
                     f"array), got {idx!r}.") from e
  if not idx:
    raise ValueError(f"{name} is empty; give at least one variable index.")
  if len(set(idx)) != len(idx):
    raise ValueError(f"{name}={idx} has repeated indices.")
  if min(idx) < 0 or max(idx) >= dim:
    raise ValueError(f"{name}={idx} is out of range for a {dim}×{dim} covariance.")
  return idx


def _check_disjoint(**blocks: tuple[int, ...]) -> None:
  names = list(blocks)
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      common = set(blocks[a]) & set(blocks[b])
      if common:
        raise ValueError(f"{a} and {b} share indices {sorted(common)}; the blocks must be disjoint.")


def logdet_psd(cov: jax.Array, *, ridge: float = 0.0) -> jax.Array:
  """``log det(Σ + ridge·I)`` of a symmetric PSD matrix via Cholesky.

  ``2 Σ_i log L_ii`` with ``L Lᵀ = Σ + ridge·I``. Returns NaN if the matrix is
  not positive definite; use ``ridge > 0`` for rank-deficient estimates
  (e.g. a batch covariance with N ≤ D).

  Args:
    cov: ``[D, D]`` symmetric positive (semi-)definite matrix.
    ridge: added to the diagonal, in the units of ``cov``.
  Returns:
    Scalar log-determinant.
  """
  _check_cov(cov)
  d = cov.shape[0]
  chol = jnp.linalg.cholesky(cov + ridge * jnp.eye(d, dtype=cov.dtype))
  return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))


def gaussian_entropy(cov: jax.Array, *, ridge: float = 0.0, base: float = math.e) -> jax.Array:
  """Differential entropy of ``N(μ, Σ)``: ``H = ½ log det(2πe (Σ + ridge·I))``.

  Cover and Thomas, Thm. 8.4.1. Units: **nats** by default (``base=math.e``);
  ``base=2`` for bits. (Differential entropy can be negative.)

  Args:
    cov: ``[D, D]`` covariance.
    ridge: diagonal ridge added before the log-determinant.
    base: logarithm base.
  Returns:
    Scalar entropy.

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(gaussian_entropy(jnp.eye(1))), 4)   # ½ log(2πe) nats
    1.4189
  """
  _check_cov(cov)
  d = cov.shape[0]
  h = 0.5 * (d * math.log(2 * math.pi * math.e) + logdet_psd(cov, ridge=ridge))
  return nats_to(h, base)


def gaussian_mi(cov: jax.Array, idx_a: Sequence[int] | int, idx_b: Sequence[int] | int, *,
                ridge: float = 0.0, base: float = math.e) -> jax.Array:
  """Mutual information of two blocks of a jointly Gaussian vector.

  ``I(A;B) = ½ [log det Σ_AA + log det Σ_BB − log det Σ_{A∪B}]`` with
  ``Σ ← Σ + ridge·I`` (Cover and Thomas §8.5). Invariant to
  invertible linear maps within each block; the ridge is not, so standardise
  the variables (use a correlation matrix) if ``ridge > 0`` should be relative.
  Units: **nats** by default; ``base=2`` for bits.

  Args:
    cov: ``[D, D]`` joint covariance.
    idx_a: static indices of block A (ints).
    idx_b: static indices of block B, disjoint from A.
    ridge: diagonal ridge (in the units of ``cov``).
    base: logarithm base.
  Returns:
    Scalar I(A;B) ≥ 0.

  Example:
    >>> import jax.numpy as jnp
    >>> cov = jnp.array([[1., .5], [.5, 1.]])
    >>> round(float(gaussian_mi(cov, [0], [1])), 4)   # −½ log(1 − ρ²), ρ = .5, nats
    0.1438
  """
  _check_cov(cov)
  d = cov.shape[0]
  a = _as_index(idx_a, d, "idx_a")
  b = _as_index(idx_b, d, "idx_b")
  _check_disjoint(idx_a=a, idx_b=b)
  return nats_to(_mi_nats(cov, a, b, ridge), base)


def _block(cov, idx):
  ix = jnp.asarray(idx)
  return cov[ix[:, None], ix[None, :]]


def _mi_nats(cov, a, b, ridge):
  return 0.5 * (logdet_psd(_block(cov, a), ridge=ridge) + logdet_psd(_block(cov, b), ridge=ridge)
                - logdet_psd(_block(cov, a + b), ridge=ridge))


def gaussian_pid_mmi(cov: jax.Array, idx_x1: Sequence[int] | int, idx_x2: Sequence[int] | int,
                     idx_y: Sequence[int] | int, *, ridge: float = 0.0,
                     base: float = math.e) -> PIDAtoms:
  """MMI partial information decomposition of jointly Gaussian (X1, X2; Y).

  ``R = min(I(Y;X1), I(Y;X2))``, ``U_i = I(Y;X_i) − R``,
  ``S = I(Y;X1,X2) − max(I(Y;X1), I(Y;X2))``, every MI from `gaussian_mi`.
  Units: **nats** by default (``base=2`` for bits).

  **Scalar target (``len(idx_y) == 1``): exact.** Barrett (2015, Phys. Rev. E
  91:052802, Sec. IV) shows that for jointly Gaussian vector sources and a
  univariate Gaussian target every PID whose redundancy depends only on the
  pairwise marginals p(x1,y), p(x2,y), which includes BROJA (Bertschinger et
  al. 2014) and I_min, reduces to MMI.

  **Vector target: an approximation.** Venkatesh and Schamberg (2021, arXiv
  2105.00769) show that Barrett's reduction fails for multivariate targets: the
  Gaussian BROJA PID (computed by Venkatesh et al., NeurIPS 2023, arXiv
  2307.10515, code ``praveenv253/gpid``) can have both unique atoms positive.
  What MMI gives then is an extreme: for any PID with non-negative atoms,
  ``R ≤ min_i I(Y;X_i)``, so MMI returns the largest redundancy and synergy and
  the smallest unique informations (one of them always 0) that the bookkeeping
  identities allow. It still assumes (X1, X2, Y) jointly Gaussian.

  Args:
    cov: ``[D, D]`` joint covariance of all variables.
    idx_x1, idx_x2, idx_y: static, pairwise-disjoint index blocks.
    ridge: diagonal ridge added before every log-determinant.
    base: logarithm base.
  Returns:
    `PIDAtoms` (nats by default).

  Example (independent unit sources, ``Y = X1 + X2 + N`` with unit noise;
  R = ½ ln 1.5, U1 = U2 = 0, S = ½ ln 2 nats)::

    >>> import jax.numpy as jnp
    >>> cov = jnp.array([[1., 0., 1.], [0., 1., 1.], [1., 1., 3.]])
    >>> [round(float(v), 4) for v in gaussian_pid_mmi(cov, [0], [1], [2])]
    [0.2027, 0.0, 0.0, 0.3466]
  """
  _check_cov(cov)
  d = cov.shape[0]
  x1 = _as_index(idx_x1, d, "idx_x1")
  x2 = _as_index(idx_x2, d, "idx_x2")
  y = _as_index(idx_y, d, "idx_y")
  _check_disjoint(idx_x1=x1, idx_x2=x2, idx_y=y)
  i1 = _mi_nats(cov, x1, y, ridge)
  i2 = _mi_nats(cov, x2, y, ridge)
  i12 = _mi_nats(cov, x1 + x2, y, ridge)
  atoms = atoms_from_redundancy(jnp.minimum(i1, i2), i1, i2, i12)
  return jax.tree.map(lambda v: nats_to(v, base), atoms)
