"""Entropy estimators that replace VICReg's variance + covariance terms.

Papers: Shwartz-Ziv, Balestriero and LeCun, "What Do We Maximize in
Self-Supervised Learning?" (arXiv 2207.10081), and Shwartz-Ziv, Balestriero,
Kawaguchi, Rudner and LeCun, "An Information-Theoretic Perspective on
Variance-Invariance-Covariance Regularization", NeurIPS 2023 (arXiv
2303.00633). Their argument: for a deterministic piecewise-affine network
and inputs that are a mixture of narrow Gaussians, ``I(Z; X') = H(Z) − H(Z|X')``; a Gaussian decoder turns
``−H(Z|X')`` into the MSE invariance, and VICReg's variance hinge +
decorrelation is a surrogate for the Gaussian entropy ``½·log det Σ_Z``. The
NeurIPS paper replaces that surrogate with explicit entropy estimators
("VICReg/BYOL + LogDet", "+ PairDist"). No official code was published, so the
exact recipe (β, σ, weights, branch averaging) is a documented choice here:

* :func:`logdet_entropy`: LogDet estimator (Zhouyin and Liu 2021, arXiv
  2105.03705; same form as the MCR² coding rate of Yu et al. 2020)
  ``Ĥ = ½·log det(I_D + β·Σ̂)``, ``Σ̂ = Z̃ᵀZ̃/N`` with ``Z̃`` the centred batch.
* :func:`pairwise_mixture_entropy`: Kolchinsky and Tracey 2017, "Estimating
  Mixture Entropy with Pairwise Distances" (Entropy 19:361), bounds on the
  entropy of the mixture ``(1/N)·Σ_i N(z_i, σ²I)``: KL → upper bound, Bhattacharyya → lower.
* :func:`vicreg_entropy_loss`: ``λ·inv − w·(Ĥ(Z) + Ĥ(Z'))`` on ``views``
  ``[V=2, N, D]`` (the kernel contract, ``docs/kernels.md``); the estimators
  are bare functions of one embedding ``[N, D]`` that return an array.

Method page (formulas, documented choices, measured agreement):
``docs/methods/vicreg_entropy.md``.

Distributed use: every function takes ``axis_name`` and gives the same value
and gradient on the global batch (``axis_name=None``, what the jitted train
step uses on an ``Auto`` mesh) and per shard inside ``jax.shard_map``.
``logdet_entropy`` in covariance form reduces a D×D matrix (no gather); its
Gram form (D > N) and the pairwise estimators all-gather the N×D batch.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views

ENTROPY_ESTIMATORS = ("logdet", "pairwise_kl", "pairwise_bhattacharyya")
_BOUNDS = ("kl", "bhattacharyya")
_FORMS = ("auto", "covariance", "gram")


def _compute_dtype(z: jax.Array) -> jnp.dtype:
  # Log-determinants and log-sum-exps lose too many digits in bfloat16/float16.
  return jnp.promote_types(z.dtype, jnp.float32)


def _check_embeddings(z: jax.Array, fn: str) -> None:
  shape = getattr(z, "shape", None)
  if shape is None or len(shape) != 2:
    raise ValueError(
        f"{fn}: z must be one embedding [N, D] (batch, features); got "
        f"{'shape ' + str(tuple(shape)) if shape is not None else type(z).__name__}. "
        "For views [V, N, D] call it per view (z = views[v]) or use vicreg_entropy_loss; "
        "flatten or pool other extra axes first.")


def _check_positive(value, name: str, hint: str) -> None:
  # Only concrete Python numbers can be checked without breaking jit/vmap.
  if isinstance(value, (int, float)) and not value > 0:
    raise ValueError(f"{name} must be > 0, got {value}; {hint}")


def _replicated(x: jax.Array, axis_name: Optional[str]) -> jax.Array:
  # Every device computed the same value from all-gathered inputs. pmean marks
  # it replicated for out_specs=P() and hands each copy a 1/devices cotangent,
  # which the all_gather transpose (psum_scatter) sums back to exactly one.
  return x if axis_name is None else jax.lax.pmean(x, axis_name)


def _logdet_spd(a: jax.Array) -> jax.Array:
  """log det of a symmetric positive-definite matrix via Cholesky. a: [M, M] -> []."""
  chol = jnp.linalg.cholesky(0.5 * (a + a.T))
  return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))


def coding_rate_beta(dim: int, eps_sq: float | jax.Array) -> float | jax.Array:
  """β of :func:`logdet_entropy` that reproduces the MCR² coding rate.

  MCR² (Yu et al. 2020, coding rate R(Z, ε)) writes ``R = ½·log det(I + D/(N·ε²)·ZᵀZ)``;
  since :func:`logdet_entropy` uses ``Σ̂ = Z̃ᵀZ̃/N``, the same value (for centred
  Z) needs ``β = D/ε²``. MCR² uses ε² = 0.5 on L2-normalised features.

  Example:
    >>> coding_rate_beta(128, 0.5)
    256.0
  """
  return dim / eps_sq


def logdet_entropy(
    z: jax.Array,
    *,
    beta: float | jax.Array = 1.0,
    ridge: float | jax.Array = 0.0,
    form: str = "auto",
    axis_name: Optional[str] = None,
) -> jax.Array:
  """LogDet entropy estimate ``Ĥ = ½·log det(I_D + β·Σ̂)``, in nats.

  ``Σ̂ = Z̃ᵀZ̃/N`` is the (biased, 1/N) covariance of the centred global batch
  ``Z̃ = Z − Z̄``. This is the LogDet estimator of Zhouyin and Liu (2021,
  arXiv 2105.03705) as in ``grizxlyzx/MixEntroPY`` (``β = 1`` default there
  too); the "+ LogDet" entropy of Shwartz-Ziv et al. (NeurIPS 2023). It is
  the Gaussian entropy of Σ̂ plus isotropic noise of variance 1/β, minus that
  noise's entropy, so it is finite for collapsed batches (Ĥ = 0 at Σ̂ = 0).

  β convention: β multiplies the *covariance*. The MCR² / coding-rate
  convention ``D/(N·ε²)·ZᵀZ`` is β = D/ε² (:func:`coding_rate_beta`). Default
  β = 1: for VICReg-scale embeddings (per-dimension std ≈ 1) that is unit noise
  per dimension. Documented choice; the paper's value is not known.

  Forms (identical value by Sylvester's identity ``det(I_D + AᵀA) = det(I_N +
  AAᵀ)``): ``'covariance'`` factorises the D×D matrix ``I_D + β·Z̃ᵀZ̃/N``
  (under ``shard_map``: a ``psum`` of D×D, no gather); ``'gram'`` the N×N
  matrix ``I_N + β·Z̃Z̃ᵀ/N`` (gathers the N×D batch); ``'auto'`` picks Gram
  when D > N (global N, static).

  Numerics: Cholesky of the symmetrised matrix. Its eigenvalues are ≥ 1, so the
  identity already acts as a ridge; ``ridge`` adds ``ridge·I`` on top (changes
  the value by ≤ M·ridge/2) for very large β in low precision.

  Args:
    z: [n, D] embeddings (local rows under ``shard_map``; N = global batch).
    beta: β > 0, scale of the covariance (noise-to-signal ratio).
    ridge: extra diagonal ≥ 0 added before the Cholesky (default 0).
    form: ``'auto'``, ``'covariance'`` or ``'gram'`` (same value).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    [] entropy estimate in nats.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (512, 4))
    >>> h = logdet_entropy(z, beta=1.0)   # ≈ ½·4·log 2 for white noise
  """
  _check_embeddings(z, "logdet_entropy")
  _check_positive(beta, "beta", "it scales the covariance; 1.0 is the default, "
                  "coding_rate_beta(D, eps_sq) gives the MCR² value.")
  if isinstance(ridge, (int, float)) and ridge < 0:
    raise ValueError(f"ridge must be >= 0, got {ridge}; it is an extra diagonal for stability.")
  if form not in _FORMS:
    raise ValueError(f"form={form!r} is not one of {_FORMS}; both forms give the same value, "
                     "'auto' uses the N×N Gram form when D > N.")
  n = parallel.global_batch_size(z.shape[0], axis_name)
  d = z.shape[1]
  z = z.astype(_compute_dtype(z))
  zc = z - parallel.batch_mean(z, axis_name)
  use_gram = form == "gram" or (form == "auto" and d > n)
  if use_gram:
    zall = parallel.all_gather_batch(zc, axis_name)
    a = jnp.eye(n, dtype=z.dtype) + (beta / n) * (zall @ zall.T)
    h = 0.5 * _logdet_spd(a + ridge * jnp.eye(n, dtype=z.dtype))
    return _replicated(h, axis_name)
  # Per-device partial Z̃ᵀZ̃ summed over devices (a batch reduction of D×D).
  cov = parallel.batch_sum((zc.T @ zc)[None], axis_name) / n
  a = jnp.eye(d, dtype=z.dtype) + beta * cov
  return 0.5 * _logdet_spd(a + ridge * jnp.eye(d, dtype=z.dtype))


def pairwise_mixture_entropy(
    z: jax.Array,
    *,
    sigma: float | jax.Array | None = 1.0,
    bound: str = "kl",
    axis_name: Optional[str] = None,
) -> jax.Array:
  """Kolchinsky–Tracey pairwise-distance estimate of a Gaussian-mixture entropy.

  The batch defines the mixture ``p = (1/N)·Σ_j N(z_j, σ²·I_D)``. With
  component entropy ``H(p_i) = (D/2)·log(2πeσ²)`` and a distance ``D_ij``
  between components (Kolchinsky and Tracey 2017, estimator Ĥ_D)::

    Ĥ = (D/2)·log(2πeσ²) − (1/N)·Σ_i log[(1/N)·Σ_j exp(−D_ij)]
    D_ij = ||z_i − z_j||²/(2σ²)   KL divergence          → upper bound on H(p)
    D_ij = ||z_i − z_j||²/(8σ²)   Bhattacharyya distance → lower bound on H(p)

  (their KL-upper / Bhattacharyya-lower bound results; equation numbers not
  checked against the PDF. The j = i term, D_ii = 0, is included, so both are exact
  for N = 1 and both lie in [H(p_i), H(p_i) + log N].) Up to constants this is
  Wang & Isola's uniformity log-mean-exp with ``t = 1/(2σ²)`` or ``1/(8σ²)``.

  σ default (documented choice, the paper's value is unknown): σ = 1, unit
  mixture components, the same mixture for both bounds. Near collapse
  (distances ≪ σ) the estimate is ``H(p_i) + tr(Σ̂)/σ²`` (KL; ``/(4σ²)``
  Bhattacharyya), Σ̂ the batch covariance, so σ sets how hard it pushes
  against collapse: σ = 1 pushes like the LogDet estimator's ``(β/2)·tr(Σ̂)``
  at β = 2 (KL) or β = 1/2 (Bhattacharyya). The old default σ² = D
  (``sigma=None``, still accepted) pushes D/2 times less than LogDet at β = 1
  and collapsed VICReg + pairwise KL on Fashion-MNIST (validation linear
  top-1 66.8 % at σ² = D vs 84.1 % at σ = 1; `docs/methods/vicreg_entropy.md`).
  Far apart (distances ≫ σ) the estimate saturates at ``H(p_i) + log N``;
  the invariance term then shrinks the embedding until neighbours sit at ~σ.

  Distributed: each device computes its own rows against the all-gathered
  batch (N×D gather, [n, N] distances) and the row terms are summed over
  devices with the global N. Distances are computed after subtracting the
  (stop-gradient) batch mean, which is exact because they are
  translation-invariant and avoids cancellation in ``|a|² + |b|² − 2a·b``.

  Args:
    z: [n, D] embeddings (local rows under ``shard_map``; N = global batch).
    sigma: component standard deviation σ > 0 (default 1); ``None`` → ``sqrt(D)``.
    bound: ``'kl'`` (upper bound) or ``'bhattacharyya'`` (lower bound).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    [] entropy estimate in nats.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (64, 8))
    >>> upper = pairwise_mixture_entropy(z, sigma=0.5, bound="kl")
    >>> lower = pairwise_mixture_entropy(z, sigma=0.5, bound="bhattacharyya")
  """
  _check_embeddings(z, "pairwise_mixture_entropy")
  if bound not in _BOUNDS:
    raise ValueError(f"bound={bound!r} is not one of {_BOUNDS}: 'kl' gives the upper bound, "
                     "'bhattacharyya' the lower bound of Kolchinsky & Tracey (2017).")
  _check_positive(sigma, "sigma", "it is the std of each mixture component (None → sqrt(D)).")
  n_local, d = z.shape
  n = parallel.global_batch_size(n_local, axis_name)
  z = z.astype(_compute_dtype(z))
  sigma2 = jnp.asarray(d if sigma is None else jnp.square(sigma), z.dtype)
  zall = parallel.all_gather_batch(z, axis_name)
  shift = jax.lax.stop_gradient(jnp.mean(zall, axis=0))
  zl, za = z - shift, zall - shift
  sq_l, sq_a = jnp.sum(jnp.square(zl), -1), jnp.sum(jnp.square(za), -1)
  d2 = jnp.maximum(sq_l[:, None] + sq_a[None, :] - 2.0 * (zl @ za.T), 0.0)  # [n, N]
  # The self-distance is exactly zero; rounding in the expansion would not be.
  rows = parallel.local_row_offset(n_local, axis_name) + jnp.arange(n_local)
  d2 = jnp.where(rows[:, None] == jnp.arange(n)[None, :], 0.0, d2)
  scale = (2.0 if bound == "kl" else 8.0) * sigma2
  log_mix = jax.nn.logsumexp(-d2 / scale, axis=1) - math.log(n)  # [n]
  h_component = 0.5 * d * jnp.log(2.0 * math.pi * math.e * sigma2)
  return h_component - parallel.batch_sum(log_mix, axis_name) / n


def estimate_entropy(
    z: jax.Array,
    *,
    estimator: str = "logdet",
    beta: float | jax.Array = 1.0,
    sigma: float | jax.Array | None = 1.0,
    ridge: float | jax.Array = 0.0,
    axis_name: Optional[str] = None,
) -> jax.Array:
  """Entropy of one branch with the named estimator (for VICReg- or BYOL-style losses).

  Args:
    z: [n, D] embeddings (local rows under ``shard_map``).
    estimator: ``'logdet'`` (:func:`logdet_entropy`, uses ``beta``, ``ridge``),
      ``'pairwise_kl'`` or ``'pairwise_bhattacharyya'``
      (:func:`pairwise_mixture_entropy`, uses ``sigma``).
    beta: β of the LogDet estimator.
    sigma: σ of the pairwise estimators (default 1; ``None`` → ``sqrt(D)``).
    ridge: extra Cholesky diagonal of the LogDet estimator.
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    [] entropy estimate in nats.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (32, 8))
    >>> h = estimate_entropy(z, estimator="pairwise_bhattacharyya", sigma=1.0)
    >>> h.shape
    ()
  """
  _check_embeddings(z, "estimate_entropy")
  if estimator == "logdet":
    return logdet_entropy(z, beta=beta, ridge=ridge, axis_name=axis_name)
  if estimator in ("pairwise_kl", "pairwise_bhattacharyya"):
    return pairwise_mixture_entropy(z, sigma=sigma, bound=estimator[len("pairwise_"):],
                                    axis_name=axis_name)
  raise ValueError(f"estimator={estimator!r} is not one of {ENTROPY_ESTIMATORS}.")


def vicreg_entropy_loss(
    views: ViewsLike,
    *,
    estimator: str = "logdet",
    sim_coeff: float | jax.Array = 25.0,
    entropy_coeff: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
    sigma: float | jax.Array | None = 1.0,
    ridge: float | jax.Array = 0.0,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """VICReg with its variance + covariance terms replaced by an entropy estimate.

  ``L = λ·inv(Z, Z') − w·(Ĥ(Z) + Ĥ(Z'))`` with ``inv`` VICReg's per-element
  MSE ``1/(N·D)·Σ_i ||z_i − z'_i||²`` (official ``F.mse_loss``, as
  :func:`ssljax.losses.vicreg.invariance_term`) and ``Ĥ`` one of
  :data:`ENTROPY_ESTIMATORS`: the "VICReg + LogDet" / "VICReg + PairDist"
  objectives of Shwartz-Ziv et al. (NeurIPS 2023), i.e. a surrogate of
  ``max I(Z; X') = H(Z) − H(Z|X')`` with a Gaussian decoder for ``H(Z|X')``.
  For the BYOL variants pass the online predictions and the target
  projections as the two views (or add ``−w·estimate_entropy(...)`` to the
  BYOL loss). See ``docs/methods/vicreg_entropy.md``.

  Documented choices (no official code): the two branch entropies are summed
  (an average ``−w·(Ĥ + Ĥ')/2`` is the same with ``w`` halved);
  λ = 25 keeps VICReg's invariance weight; w = 1, β = 1, σ = 1 (see
  :func:`pairwise_mixture_entropy` for why not sqrt(D)). Scale:
  the LogDet entropy grows like ``(D/2)·log(1 + β·std²)`` while the pairwise
  estimates move by at most ``log N``, so ``entropy_coeff`` must be tuned per
  estimator and embedding width.

  Args:
    views: ``[V=2, n, D]`` embeddings of the two views (``jnp.stack([z1, z2])``)
      or a sequence ``(z1, z2)`` of ``[n, D]`` arrays; rows are aligned (local
      rows under ``shard_map``; N = global batch).
    estimator: ``'logdet'``, ``'pairwise_kl'`` or ``'pairwise_bhattacharyya'``.
    sim_coeff: λ, invariance weight (VICReg's 25).
    entropy_coeff: w, weight of each branch entropy.
    beta: β of the LogDet estimator.
    sigma: σ of the pairwise estimators (default 1; ``None`` → ``sqrt(D)``).
    ridge: extra Cholesky diagonal of the LogDet estimator.
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``: ``loss`` [] and ``aux`` with the scalars ``invariance``
    (unweighted MSE), ``entropy1``, ``entropy2`` and ``entropy`` (their sum),
    in nats.

  Raises:
    ValueError: for a layout other than ``[2, N, D]`` (``as_views``) or an
      unknown estimator.

  Example:
    >>> k1, k2 = jax.random.split(jax.random.key(0))
    >>> z1 = jax.random.normal(k1, (128, 16))
    >>> z2 = z1 + 0.1 * jax.random.normal(k2, (128, 16))
    >>> loss, aux = vicreg_entropy_loss(jnp.stack([z1, z2]), estimator="pairwise_kl")
    >>> loss.shape, sorted(aux)
    ((), ['entropy', 'entropy1', 'entropy2', 'invariance'])
  """
  views = as_views(views, kernel="vicreg_entropy_loss", num_views=2, axis_name=axis_name)
  if estimator not in ENTROPY_ESTIMATORS:
    raise ValueError(f"estimator={estimator!r} is not one of {ENTROPY_ESTIMATORS}.")
  n_local, d = views.shape[1:]
  n = parallel.global_batch_size(n_local, axis_name)
  dt = _compute_dtype(views)
  diff = views[0].astype(dt) - views[1].astype(dt)
  inv = parallel.batch_sum(jnp.sum(jnp.square(diff), axis=-1), axis_name) / (n * d)
  kw = dict(estimator=estimator, beta=beta, sigma=sigma, ridge=ridge, axis_name=axis_name)
  h1 = estimate_entropy(views[0], **kw)
  h2 = estimate_entropy(views[1], **kw)
  loss = sim_coeff * inv - entropy_coeff * (h1 + h2)
  return loss, {"invariance": inv, "entropy1": h1, "entropy2": h2, "entropy": h1 + h2}
