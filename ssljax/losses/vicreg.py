"""VICReg: Variance-Invariance-Covariance Regularization, and its building blocks.

Paper: Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning", ICLR 2022 (arXiv 2105.04906),
Eqs. 1-6. Official code: ``facebookresearch/vicreg`` ``main_vicreg.py``
(``VICReg.forward``, ``off_diagonal``, ``FullGatherLayer``). Formulas,
conventions and measured agreement: ``docs/methods/vicreg.md``.

With ``views = [Z, Z']``, ``Z, Z' ∈ R^{N×D}`` the expander outputs of the two
views and ``N`` the *global* batch size::

  inv(Z, Z') = 1/(N·D) · Σ_i ||z_i − z'_i||²                      (F.mse_loss)
  C(Z)       = (Z − Z̄)ᵀ(Z − Z̄) / (N − 1)                          (unbiased)
  v(Z)       = 1/D · Σ_j relu(1 − sqrt(C(Z)_jj + ε))               (γ = 1)
  c(Z)       = 1/D · Σ_{i≠j} C(Z)_ij²
  L          = λ·inv + μ·[v(Z) + v(Z')]/2 + ν·[c(Z) + c(Z')]

Paper vs official code (the defaults follow the code):

* **Variance halving.** Eq. 6 of the paper writes ``μ·[v(Z) + v(Z')]``; the
  code computes ``mean(relu(1 − std_x))/2 + mean(relu(1 − std_y))/2``
  (facebookresearch/vicreg#8). Here: the code's average over the two branches.
  solo-learn does *not* halve (2× the variance weight at the same "25").
* **Invariance normalisation.** The paper's ``s(Z, Z')`` averages over N only;
  the code's ``F.mse_loss`` averages over N·D entries. Here: the code's.
  The λ = μ = 25, ν = 1 defaults belong to the code's normalisation.
* **Global batch.** The code all-gathers (``FullGatherLayer``) before the
  variance and covariance terms, so ``N`` is the global batch and the
  denominator is ``N − 1`` (the code uses ``args.batch_size − 1``, which is
  wrong for a short last batch; here the actual global ``N`` is used).
  The invariance term is a plain mean, identical local or global.
* ``ε = 1e-4`` inside the square root, as in the code.

Distributed use and numerics. ``vicreg_loss`` (what the train step calls) is a
centred *two-pass* computation: first the global mean (a ``psum`` of D numbers
under ``shard_map``, automatic under ``jit``), then the covariance of the
centred embeddings (a ``psum`` of a D×D matrix). No N×D gather is needed. The
two-pass form is accurate when ``|mean| ≫ std`` (bf16 / float32 with offset
embeddings), where the one-pass ``E[zzᵀ] − μμᵀ`` cancels catastrophically.
``vicreg_stats`` → ``vicreg_from_stats`` is the one-pass *sufficient-statistics*
split (raw sums ``Σz``, ``Σzzᵀ``, ``Σ||z1 − z2||²``, ``N``): the statistics are
additive, so they can be accumulated over micro-batches (gradient
accumulation) or reduced across hosts with one collective, at the price of
that cancellation; it is not the train step's default path.

``invariance_term``, ``variance_term`` and ``covariance_term`` are exposed
separately so other objectives (e.g. BYOL + variance/covariance regularisers,
or the entropy variants in :mod:`ssljax.losses.entropy`) can reuse them.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views


class VICRegStats(NamedTuple):
  """Additive sufficient statistics of a VICReg batch (a pytree).

  Two ``VICRegStats`` of disjoint batches combine with
  ``jax.tree.map(jnp.add, a, b)``.

  Attributes:
    n: [] global number of examples (float, in the embeddings' dtype).
    sum1: [D] ``Σ_i z1_i``.
    sum2: [D] ``Σ_i z2_i``.
    outer1: [D, D] ``Σ_i z1_i z1_iᵀ``.
    outer2: [D, D] ``Σ_i z2_i z2_iᵀ``.
    sq_diff: [] ``Σ_i ||z1_i − z2_i||²``.
  """
  n: jax.Array
  sum1: jax.Array
  sum2: jax.Array
  outer1: jax.Array
  outer2: jax.Array
  sq_diff: jax.Array


def _compute_dtype(z: jax.Array) -> jnp.dtype:
  # Batch statistics in at least float32: bf16 sums of N products lose the
  # variance hinge's precision long before the loss itself looks wrong.
  return jnp.promote_types(z.dtype, jnp.float32)


def _check_embeddings(z: jax.Array, name: str) -> None:
  if z.ndim != 2:
    raise ValueError(f"{name} must have shape [N, D] (batch, features), got shape {z.shape}; "
                     "flatten or pool extra axes before the loss.")


def _two_views(views: ViewsLike, kernel: str, axis_name: Optional[str]) -> jax.Array:
  """[2, n, D] views promoted to the compute dtype."""
  # as_views passes a NumPy array through: make it a jax.Array so every
  # reduction below runs in XLA (same summation as the sequence input).
  z = jnp.asarray(as_views(views, kernel=kernel, num_views=2, axis_name=axis_name))
  return z.astype(_compute_dtype(z))


def _check_global_n(n: int, what: str) -> None:
  # global_batch_size is a concrete int (psum of a Python int is static).
  if n < 2:
    raise ValueError(f"{what} needs a global batch of at least 2 examples (unbiased variance "
                     f"divides by N − 1), got N = {n}.")


def _psum_stat(x: jax.Array, axis_name: Optional[str]) -> jax.Array:
  # Sum of per-device partial statistics (D or D×D): a batch reduction whose
  # batch axis has already been contracted locally, e.g. by zᵀz.
  return parallel.batch_sum(x[None], axis_name)


def _centre(z: jax.Array, axis_name: Optional[str]) -> jax.Array:
  """First pass: subtract the global batch mean. z: [n, D] -> [n, D]."""
  return z - parallel.batch_mean(z, axis_name)


def _variance_from_var(var: jax.Array, eps) -> jax.Array:
  """v = mean_j relu(1 − sqrt(var_j + ε)). var: [D] unbiased variances -> []."""
  return jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(var + eps)))


def _covariance_from_cov(cov: jax.Array) -> jax.Array:
  """c = Σ_{i≠j} C_ij² / D. cov: [D, D] -> []."""
  d = cov.shape[-1]
  off = jnp.sum(jnp.square(cov)) - jnp.sum(jnp.square(jnp.diagonal(cov)))
  return off / d


def _invariance(z1: jax.Array, z2: jax.Array, axis_name: Optional[str]) -> jax.Array:
  n = parallel.global_batch_size(z1.shape[0], axis_name)
  return parallel.batch_sum(jnp.sum(jnp.square(z1 - z2), axis=-1), axis_name) / (n * z1.shape[1])


def invariance_term(views: ViewsLike, *, axis_name: Optional[str] = None) -> jax.Array:
  """VICReg invariance: mean squared error over all N·D entries.

  ``inv = 1/(N·D) · Σ_i ||z1_i − z2_i||²`` (official ``F.mse_loss(x, y)``;
  the paper's Eq. 5 omits the 1/D, see the module docstring).

  Args:
    views: ``[2, n, D]`` embeddings of the two views, row-aligned, or
      ``(z1, z2)`` (n = local rows; N = global batch).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    [] scalar.

  Example:
    >>> z = jnp.ones((4, 3))
    >>> float(invariance_term((z, z + 1.0)))
    1.0
  """
  z = _two_views(views, "invariance_term", axis_name)
  return _invariance(z[0], z[1], axis_name)


def variance_term(z: jax.Array, *, eps: float | jax.Array = 1e-4,
                  axis_name: Optional[str] = None) -> jax.Array:
  """VICReg variance hinge of ONE branch on the global batch.

  ``v(Z) = 1/D · Σ_j relu(1 − sqrt(Var_unbiased(Z[:, j]) + ε))`` (paper Eqs.
  1-2 with γ = 1; official ``std_x = sqrt(x.var(dim=0) + 1e-4)``, where
  ``torch.var`` is unbiased). ``vicreg_loss`` averages the two branches (the
  official halving). Centred two-pass variance with global N − 1.

  Args:
    z: [n, D] embeddings (local rows under ``shard_map``).
    eps: ε inside the square root (official 1e-4); keeps the gradient finite
      for collapsed dimensions.
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    [] scalar in [0, 1 − sqrt(ε)].

  Example:
    >>> collapsed = jnp.zeros((8, 4))
    >>> round(float(variance_term(collapsed)), 6)   # 1 − sqrt(1e-4)
    0.99
  """
  _check_embeddings(z, "z")
  n = parallel.global_batch_size(z.shape[0], axis_name)
  _check_global_n(n, "variance_term")
  zc = _centre(z.astype(_compute_dtype(z)), axis_name)
  var = parallel.batch_sum(jnp.square(zc), axis_name) / (n - 1)
  return _variance_from_var(var, eps)


def covariance_term(z: jax.Array, *, axis_name: Optional[str] = None) -> jax.Array:
  """VICReg covariance penalty of ONE branch on the global batch.

  ``c(Z) = 1/D · Σ_{i≠j} C(Z)_ij²`` with ``C(Z) = (Z − Z̄)ᵀ(Z − Z̄)/(N − 1)``
  (paper Eqs. 3-4; official ``off_diagonal(cov_x).pow_(2).sum().div(D)``).
  ``vicreg_loss`` *sums* the two branches, as the code does. Communication
  under ``shard_map``: one D-vector and one D×D ``psum``.

  Args:
    z: [n, D] embeddings (local rows under ``shard_map``).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    [] scalar.

  Example:
    >>> z = jnp.array([[1., 1.], [-1., -1.]])   # perfectly correlated
    >>> float(covariance_term(z))               # C = [[2, 2], [2, 2]]: (4 + 4)/2
    4.0
  """
  _check_embeddings(z, "z")
  n = parallel.global_batch_size(z.shape[0], axis_name)
  _check_global_n(n, "covariance_term")
  zc = _centre(z.astype(_compute_dtype(z)), axis_name)
  cov = _psum_stat(zc.T @ zc, axis_name) / (n - 1)
  return _covariance_from_cov(cov)


def _combine(inv, var1, var2, cov1, cov2, sim_coeff, std_coeff, cov_coeff, eps):
  variance = 0.5 * (_variance_from_var(var1, eps) + _variance_from_var(var2, eps))
  covariance = _covariance_from_cov(cov1) + _covariance_from_cov(cov2)
  loss = sim_coeff * inv + std_coeff * variance + cov_coeff * covariance
  return loss, {"invariance": inv, "variance": variance, "covariance": covariance}


def vicreg_loss(
    views: ViewsLike,
    *,
    sim_coeff: float | jax.Array = 25.0,
    std_coeff: float | jax.Array = 25.0,
    cov_coeff: float | jax.Array = 1.0,
    eps: float | jax.Array = 1e-4,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """VICReg loss on the global batch (official ``facebookresearch/vicreg`` form).

  ``L = λ·inv(Z, Z') + μ·[v(Z) + v(Z')]/2 + ν·[c(Z) + c(Z')]`` with the terms
  of the module docstring: per-element MSE, unbiased variance hinge averaged
  over the two branches (official halving, not the paper's Eq. 6), covariance
  penalties summed over the branches, all with the global N.

  This is the path the train step uses: a centred two-pass computation (global
  mean, then the D×D covariance of the centred rows); under ``shard_map`` it
  reduces a D-vector and a D×D matrix per branch instead of gathering N×D.
  See ``docs/methods/vicreg.md``.

  Args:
    views: ``[2, n, D]`` expander outputs of the two views, row-aligned, or
      ``(z1, z2)`` (local rows of axis 1 under ``shard_map``).
    sim_coeff: λ, invariance weight (official 25).
    std_coeff: μ, variance weight (official 25).
    cov_coeff: ν, covariance weight (official 1).
    eps: ε inside the std square root (official 1e-4).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``: ``loss`` [] and ``aux`` with the *unweighted* terms
    ``invariance``, ``variance`` (= [v(Z) + v(Z')]/2) and ``covariance``
    (= c(Z) + c(Z')), so ``loss = λ·inv + μ·variance + ν·covariance``.

  Example:
    >>> k1, k2 = jax.random.split(jax.random.key(0))
    >>> z1 = jax.random.normal(k1, (256, 32))
    >>> z2 = z1 + 0.1 * jax.random.normal(k2, (256, 32))
    >>> loss, aux = vicreg_loss((z1, z2))        # or jnp.stack([z1, z2]): [V=2, N, D]
    >>> sorted(aux)
    ['covariance', 'invariance', 'variance']
  """
  z = _two_views(views, "vicreg_loss", axis_name)
  z1, z2 = z[0], z[1]
  n = parallel.global_batch_size(z1.shape[0], axis_name)
  _check_global_n(n, "vicreg_loss")
  inv = _invariance(z1, z2, axis_name)
  zc1, zc2 = _centre(z1, axis_name), _centre(z2, axis_name)
  cov1 = _psum_stat(zc1.T @ zc1, axis_name) / (n - 1)
  cov2 = _psum_stat(zc2.T @ zc2, axis_name) / (n - 1)
  return _combine(inv, jnp.diagonal(cov1), jnp.diagonal(cov2), cov1, cov2,
                  sim_coeff, std_coeff, cov_coeff, eps)


def vicreg_stats(views: ViewsLike, *, axis_name: Optional[str] = None) -> VICRegStats:
  """One-pass sufficient statistics of a VICReg batch, summed over the global batch.

  Raw (uncentred) sums, so statistics of disjoint batches add up exactly; use
  with :func:`vicreg_from_stats`. Under ``shard_map`` this is one ``psum`` of
  2·(D² + D) + 2 numbers; no N×D gather.

  Args:
    views: ``[2, n, D]`` embeddings of the two views, or ``(z1, z2)`` (local
      rows of axis 1 under ``shard_map``).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    :class:`VICRegStats` with ``n`` [], ``sum1``/``sum2`` [D],
    ``outer1``/``outer2`` [D, D], ``sq_diff`` [].

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (16, 4))
    >>> vicreg_stats((z, 2 * z)).outer1.shape
    (4, 4)
  """
  z = _two_views(views, "vicreg_stats", axis_name)
  z1, z2 = z[0], z[1]
  n = parallel.global_batch_size(z1.shape[0], axis_name)
  return VICRegStats(
      n=jnp.asarray(n, z.dtype),
      sum1=parallel.batch_sum(z1, axis_name),
      sum2=parallel.batch_sum(z2, axis_name),
      outer1=_psum_stat(z1.T @ z1, axis_name),
      outer2=_psum_stat(z2.T @ z2, axis_name),
      sq_diff=parallel.batch_sum(jnp.sum(jnp.square(z1 - z2), axis=-1), axis_name),
  )


def vicreg_from_stats(
    stats: VICRegStats,
    *,
    sim_coeff: float | jax.Array = 25.0,
    std_coeff: float | jax.Array = 25.0,
    cov_coeff: float | jax.Array = 1.0,
    eps: float | jax.Array = 1e-4,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """VICReg loss from :class:`VICRegStats` (same value as :func:`vicreg_loss`).

  ``μ = Σz/N``, ``C = (Σzzᵀ − N·μμᵀ)/(N − 1)``, ``inv = Σ||z1 − z2||²/(N·D)``,
  then the terms and weights of :func:`vicreg_loss`. One-pass: loses precision
  when ``|μ| ≫ std`` in low precision (see the module docstring); the train
  step uses :func:`vicreg_loss`. ``stats.n`` must be ≥ 2 (not checked: traced).

  Args:
    stats: statistics from :func:`vicreg_stats` (possibly accumulated).
    sim_coeff: λ (official 25).
    std_coeff: μ (official 25).
    cov_coeff: ν (official 1).
    eps: ε inside the std square root (official 1e-4).

  Returns:
    ``(loss, aux)`` as in :func:`vicreg_loss`.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (16, 4))
    >>> loss, aux = vicreg_from_stats(vicreg_stats((z, z)), sim_coeff=10.0)
  """
  n = stats.n
  d = stats.sum1.shape[-1]

  def cov(s, o):
    mu = s / n
    c = (o - n * jnp.outer(mu, mu)) / (n - 1)
    return 0.5 * (c + c.T)  # exact symmetry despite rounding

  cov1, cov2 = cov(stats.sum1, stats.outer1), cov(stats.sum2, stats.outer2)
  inv = stats.sq_diff / (n * d)
  # Cancellation can make a one-pass variance slightly negative: clamp before sqrt.
  var1, var2 = (jnp.maximum(jnp.diagonal(c), 0.0) for c in (cov1, cov2))
  return _combine(inv, var1, var2, cov1, cov2,
                  sim_coeff, std_coeff, cov_coeff, eps)
