"""CorInfoMax: correlative information maximisation with a log-det barrier.

Implements Ozsoy, Hamdan, Arik, Yuret & Erdogan, "Self-Supervised Learning
with an Information Maximization Criterion" (NeurIPS 2022, arXiv 2209.07999),
as the official PyTorch code ``serdarozsoy/corinfomax-ssl`` computes it
(``cifars-tiny/loss.py::CovarianceLoss``, identical to ``CovarianceLossv2`` in
``imagenet1k/loss.py``, the class the maintainers point to in that
repository's issue #3):

  L = alpha * mean((z1 - z2)^2) - [logdet(R1 + eps I) + logdet(R2 + eps I)] / D,

where R_v is an exponential moving estimate of the covariance of branch v that
is carried from step to step as explicit, non-trainable state.

Per branch and step (state ``R_old, mu_old``, batch ``Z: [N, D]``, global N):

  1. mu = la_mu * sg(mu_old) + (1 - la_mu) * mean_rows(Z)   (gradient flows
     through the batch mean);
  2. Zc = Z - mu        (centred with the *new*, EMA-mixed mean);
  3. C = Zc^T Zc / N    (biased);
  4. R = la_R * sg(R_old) + (1 - la_R) * C;
  5. new state = (sg(R), sg(mu)).

Layout (``docs/kernels.md``): ``views`` ``[V=2, N, D]`` or ``(z1, z2)``;
``corinfomax_loss(views, *, state=None, ...) -> (loss, aux, new_state)``.
Method page (formula, official conventions, measured agreement):
``docs/methods/corinfomax.md``.

Distributed: the loss needs only per-branch sums and D x D second moments
(`corinfomax_stats` -> `corinfomax_from_stats`), so with ``axis_name`` a
D-vector (the batch mean) and the D x D moments are ``psum``-ed; nothing N x D
is gathered. The result (value, gradient and new state) equals the official
DDP code, which all-gathers z with a gradient-carrying gather so that every
rank computes the same global-batch loss and state.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize

Array = jax.Array

__all__ = ["CorInfoMaxState", "corinfomax_init_state", "psd_logdet", "corinfomax_stats",
           "corinfomax_from_stats", "corinfomax_loss"]


class CorInfoMaxState(NamedTuple):
  """Persistent per-branch covariance and mean estimates (replicated, no gradient).

  Attributes:
    r1: [D, D] covariance estimate of branch 1.
    r2: [D, D] covariance estimate of branch 2.
    mu1: [D] mean estimate of branch 1.
    mu2: [D] mean estimate of branch 2.
  """
  r1: Array
  r2: Array
  mu1: Array
  mu2: Array


def _state_dtype(dtype) -> jnp.dtype:
  # At least float32 (a bfloat16 covariance cannot carry a log-det), float64
  # under x64 when the input is float64, as the official float64 state.
  return jnp.promote_types(jnp.result_type(dtype), jnp.float32)


def _init_state(dim: int, r_init: float, dtype) -> CorInfoMaxState:
  eye = r_init * jnp.eye(dim, dtype=dtype)
  zeros = jnp.zeros((dim,), dtype)
  return CorInfoMaxState(eye, eye, zeros, zeros)


def corinfomax_init_state(views_or_dim: Union[int, ViewsLike], *, r_init: float = 1.0,
                          dtype=None) -> CorInfoMaxState:
  """Initial state: R_v = r_init * I, mu_v = 0 (official ``R_ini`` = 1.0).

  The official code keeps the state in float64 (so the mean, centring,
  covariance and log-det all run in float64); float64 views under
  ``jax.enable_x64(True)`` give a float64 state and reproduce it. The loss
  computes in the promoted dtype of the embeddings and the state.

  Args:
    views_or_dim: the embedding size D (an int), or the views ``[V=2, N, D]``
      / ``(z1, z2)`` the state is for (D and dtype are read from them).
    r_init: scale of the initial covariance.
    dtype: dtype of the state. Default: float32 for an int D; for views,
      their dtype promoted to at least float32 (float64 under x64 for
      float64 views).
  Returns:
    `CorInfoMaxState`.

  Example:
    >>> state = corinfomax_init_state(64)
    >>> state.r1.shape, state.mu1.dtype
    ((64, 64), dtype('float32'))
    >>> corinfomax_init_state(jnp.zeros((2, 8, 16), jnp.bfloat16)).r1.dtype
    dtype('float32')
  """
  if isinstance(views_or_dim, (int, np.integer)) and not isinstance(views_or_dim, bool):
    dim = int(views_or_dim)
    if dim < 1:
      raise ValueError(f"corinfomax_init_state needs dim >= 1; got {dim}.")
    return _init_state(dim, r_init, jnp.float32 if dtype is None else dtype)
  views = as_views(views_or_dim, kernel="corinfomax_init_state", num_views=2)
  return _init_state(views.shape[-1], r_init, _state_dtype(views.dtype) if dtype is None else dtype)


def _psum(x: Array, axis_name: Optional[str]) -> Array:
  return parallel.batch_sum(x[None], axis_name)


_JITTER_ULPS = 16.0


def psd_logdet(a: Array, *, eps: float = 0.0, jitter: Optional[float] = None,
               dtype=None) -> Array:
  """log det(A + (eps + jitter) I) of a symmetric PSD matrix via Cholesky.

  ``2 * sum(log(diag(cholesky(A + ridge I))))``; A is symmetrised first.

  Precision: a ridge eps = 1e-8 (official) is below the rounding error of a
  float32 covariance of unit-norm embeddings (tr(A) <= 1, rounding ~1e-7), so
  a collapsed or rank-deficient A can turn indefinite and the Cholesky returns
  NaN (observed for rank-2 batches with D = 64 after a few EMA steps).
  ``jitter=None`` (default) first factorises ``sg(A) + eps I`` as a probe
  (forward only); if that fails it adds ``16 * finfo(a.dtype).eps * tr(A)``
  (stop-gradient; ~1.9e-6 tr(A) for float32 A; the measured rounding of the
  eigenvalues is <= 1.8 eps tr(A)), otherwise exactly ``eps`` as the official
  code. The value is then finite, but in such rank-deficient
  float32 regimes each null direction contributes -log(ridge) / D and the
  value differs from the float64 official one (rank-2 batch, D = 64, 8 steps:
  33.8 here, NaN with ``jitter=0``, 43.6 in float64; an N = 8 < D = 64 batch
  needs no jitter: 40.85 vs 40.74); only a float64 A (float64 state under x64)
  reproduces the official value there.
  ``jitter=0.0`` always uses ``eps`` alone; a float adds that ridge always.
  ``dtype=jnp.float64`` (needs ``jax.enable_x64``) runs the factorisation in
  float64 (it does not undo rounding already in a float32 A). Cost: the probe
  doubles the Cholesky work (2 D^3 / 3 flops).

  Args:
    a: [D, D] symmetric PSD matrix.
    eps: ridge of the formula (CorInfoMax ``R_eps_weight``).
    jitter: extra ridge for rounding; None = automatic (see above).
    dtype: dtype of the factorisation (default: ``a.dtype``).
  Returns:
    scalar log-determinant in ``dtype``.

  Example:
    >>> round(float(psd_logdet(2.0 * jnp.eye(3))), 4)  # 3 log 2
    2.0794
  """
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ValueError(f"psd_logdet expects a square [D, D] matrix; got {a.shape}.")
  d = a.shape[0]
  a = 0.5 * (a + a.T)
  # Rounding scale of A in the precision it was *computed* in: measured
  # |lambda(A_f32) - lambda(A_f64)| <= 1.8 u tr(A) for covariances of unit-norm
  # rows (D 16..1024, ranks 1..D); 16 u tr(A) leaves a ~9x margin.
  rounding = _JITTER_ULPS * jnp.finfo(a.dtype).eps * jnp.maximum(jnp.trace(jax.lax.stop_gradient(a)), 0.0)
  if dtype is not None:
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
      raise ValueError("logdet_dtype=float64 needs 64-bit JAX: wrap the call (and its jit) in "
                       "`with jax.enable_x64(True):` or set JAX_ENABLE_X64=1.")
    a = a.astype(dtype)
    rounding = rounding.astype(dtype)
  eye = jnp.eye(d, dtype=a.dtype)
  if jitter is None:
    # Probe (no gradient): keep the formula's ridge unless rounding made A + eps I
    # indefinite, in which case add the rounding scale.
    probe = jnp.linalg.cholesky(jax.lax.stop_gradient(a) + eps * eye)
    ok = jnp.all(jnp.isfinite(jnp.diagonal(probe)))
    jitter = jnp.where(ok, 0.0, rounding).astype(a.dtype)
  chol = jnp.linalg.cholesky(a + (eps + jitter) * eye)
  return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))




def _resolve_state(state: Optional[CorInfoMaxState], dim: int, dtype, fn: str) -> CorInfoMaxState:
  """``state`` checked against D, or the initial state (r_init = 1) in ``dtype`` if None."""
  if state is None:
    return _init_state(dim, 1.0, _state_dtype(dtype))
  if state.r1.shape != (dim, dim) or state.r2.shape != (dim, dim) or state.mu1.shape != (dim,) \
      or state.mu2.shape != (dim,):
    raise ValueError(f"{fn}: state does not match D={dim}: got R {state.r1.shape}/"
                     f"{state.r2.shape}, mu {state.mu1.shape}/{state.mu2.shape}; build it with "
                     f"corinfomax_init_state(views) or corinfomax_init_state({dim}).")
  return state


def corinfomax_stats(views: ViewsLike, *, state: Optional[CorInfoMaxState] = None,
                     normalize: bool = True, shift1: Optional[Array] = None,
                     shift2: Optional[Array] = None,
                     axis_name: Optional[str] = None) -> Dict[str, Array]:
  """Additive sufficient statistics of `corinfomax_loss` over the rows of a shard.

  With y_v = z_v - s_v for a shift s_v that is the same on every device
  (default: the old state mean ``sg(mu_v)``; a shift near the batch mean keeps
  the float32 moments accurate; it does not change the value or gradient):

  * ``n``: number of rows; ``n_shift{v}``: n * s_v;
  * ``sum{v}``: sum_rows y_v [D]; ``sq{v}``: y_v^T y_v [D, D];
  * ``sq_diff``: sum_rows ||z1 - z2||^2.

  Every entry is a plain sum over rows, so per-shard statistics are reduced by
  ``psum`` (done here when ``axis_name`` is given) or a tree-sum; the
  communication is O(D^2), independent of N. Pass the result to
  `corinfomax_from_stats` with the same ``state``. `corinfomax_loss` (the
  train-step entry point) uses this path with the shift set to the global
  batch mean.

  Args:
    views: ``[V=2, n, D]`` branch embeddings or ``(z1, z2)`` (local shard
      with ``axis_name``).
    state: `CorInfoMaxState` (only the means are read, as default shifts);
      ``None``: the initial state built from ``views``.
    normalize: L2-normalise the rows first (official ``--normalize_on``).
    shift1, shift2: [D] shifts (stop-gradiented), default ``state.mu1/mu2``.
    axis_name: batch mesh axis to ``psum`` over.
  Returns:
    dict of additive statistics in the promoted dtype of the views and the
    state (at least float32).

  Example:
    >>> views = jax.random.normal(jax.random.key(0), (2, 16, 4))
    >>> stats = corinfomax_stats(views)
    >>> stats["sq1"].shape, float(stats["n"])
    ((4, 4), 16.0)
  """
  views = as_views(views, kernel="corinfomax_stats", num_views=2, axis_name=axis_name)
  state = _resolve_state(state, views.shape[-1], views.dtype, "corinfomax_stats")
  dtype = jnp.result_type(views.dtype, state.r1.dtype)
  if normalize:
    views = l2_normalize(views)
  views = views.astype(dtype)
  z1, z2 = views[0], views[1]
  n = z1.shape[0]
  stats = {"n": jnp.asarray(n, dtype),
           "sq_diff": jnp.sum((z1 - z2)**2)}
  for v, z, shift, mu in ((1, z1, shift1, state.mu1), (2, z2, shift2, state.mu2)):
    shift = jax.lax.stop_gradient((mu if shift is None else shift).astype(dtype))
    y = z - shift
    stats[f"n_shift{v}"] = n * shift
    stats[f"sum{v}"] = jnp.sum(y, axis=0)
    stats[f"sq{v}"] = y.T @ y
  if axis_name is not None:
    stats = jax.tree.map(lambda x: _psum(x, axis_name), stats)
  return stats


def corinfomax_from_stats(stats: Dict[str, Array], *, state: Optional[CorInfoMaxState] = None,
                          alpha: float = 250.0, la_R: float = 0.01, la_mu: float = 0.01,
                          eps: float = 1e-8, logdet_dtype=None, jitter: Optional[float] = None
                          ) -> Tuple[Array, Dict[str, Array], CorInfoMaxState]:
  """CorInfoMax loss, diagnostics and new state from globally reduced `corinfomax_stats`.

  Per branch, with shift s, y-sums S = sum y, moments M = sum y y^T:

    m     = s + S / N                        (batch mean)
    mu    = la_mu sg(mu_old) + (1 - la_mu) m
    delta = mu - s
    C     = (M - delta S^T - S delta^T + N delta delta^T) / N
          = sum (z - mu)(z - mu)^T / N
    R     = la_R sg(R_old) + (1 - la_R) C
  L = alpha * sq_diff / (N D) - [logdet(R1 + eps I) + logdet(R2 + eps I)] / D.

  Args:
    stats: output of `corinfomax_stats`, summed over the global batch.
    state: `CorInfoMaxState` of the previous step (the one given to
      `corinfomax_stats`); ``None``: the initial state, in the statistics' dtype.
    alpha, la_R, la_mu, eps, logdet_dtype, jitter: see `corinfomax_loss`.
  Returns:
    ``(loss, aux, new_state)`` as `corinfomax_loss`.

  Example:
    >>> views = jax.random.normal(jax.random.key(0), (2, 16, 4))
    >>> loss, aux, state = corinfomax_from_stats(corinfomax_stats(views))
    >>> state.r1.shape, sorted(aux)
    ((4, 4), ['cov_loss', 'invariance', 'logdet1', 'logdet2'])
  """
  n = stats["n"]
  d = stats["sum1"].shape[0]
  state = _resolve_state(state, d, stats["sq1"].dtype, "corinfomax_from_stats")
  out = {}
  for v, r_old, mu_old in ((1, state.r1, state.mu1), (2, state.r2, state.mu2)):
    s_sum, m2 = stats[f"sum{v}"], stats[f"sq{v}"]
    dtype = m2.dtype
    shift = stats[f"n_shift{v}"] / n
    mu = la_mu * jax.lax.stop_gradient(mu_old).astype(dtype) + (1 - la_mu) * (shift + s_sum / n)
    delta = mu - shift
    cov = (m2 - jnp.outer(delta, s_sum) - jnp.outer(s_sum, delta)
           + n * jnp.outer(delta, delta)) / n
    r = la_R * jax.lax.stop_gradient(r_old).astype(dtype) + (1 - la_R) * cov
    out[v] = (r, mu, psd_logdet(r, eps=eps, jitter=jitter, dtype=logdet_dtype))
  invariance = stats["sq_diff"] / (n * d)
  logdet1, logdet2 = out[1][2], out[2][2]
  cov_loss = -(logdet1 + logdet2) / d
  loss = alpha * invariance + cov_loss.astype(invariance.dtype)
  sg = jax.lax.stop_gradient
  new_state = CorInfoMaxState(sg(out[1][0]).astype(state.r1.dtype),
                              sg(out[2][0]).astype(state.r2.dtype),
                              sg(out[1][1]).astype(state.mu1.dtype),
                              sg(out[2][1]).astype(state.mu2.dtype))
  aux = {"invariance": invariance, "cov_loss": cov_loss, "logdet1": logdet1,
         "logdet2": logdet2}
  return loss, aux, new_state


def corinfomax_loss(views: ViewsLike, *, state: Optional[CorInfoMaxState] = None,
                    alpha: float = 250.0, la_R: float = 0.01, la_mu: float = 0.01,
                    eps: float = 1e-8, normalize: bool = True, logdet_dtype=None,
                    jitter: Optional[float] = None, axis_name: Optional[str] = None
                    ) -> Tuple[Array, Dict[str, Array], CorInfoMaxState]:
  """CorInfoMax loss ``alpha * L_inv + L_cov`` with the official EMA state.

    L_inv = (1 / (N D)) sum_i ||z1_i - z2_i||^2          (torch ``F.mse_loss``)
    L_cov = -[logdet(R1 + eps I) + logdet(R2 + eps I)] / D

  Paper: Ozsoy et al. 2022, the CorInfoMax objective (log-det "big-bang" term
  plus the Euclidean attraction, first-order approximation of the LDMI; the
  equation number was not checked against the PDF) with moving covariance
  estimates. See ``docs/methods/corinfomax.md``.
  Code: ``cifars-tiny/loss.py`` (``invariance_loss`` + ``CovarianceLoss``;
  ``CovarianceLossv2`` on ImageNet): state semantics as in the module docstring;
  the official total is ``sim_loss_weight * inv + cov_loss_weight * cov`` with
  cov_loss_weight = 1. With L2-normalised z and R = I/D, L_cov = 2 log D.

  alpha (``sim_loss_weight``) per dataset in the released runs: CIFAR-10 250
  (the default here), CIFAR-100 1000, Tiny ImageNet 500, ImageNet-100 500
  (R18 and R50), ImageNet-1K 2000. la_R = la_mu = 0.01 except Tiny ImageNet and
  ImageNet-1K (0.1). eps = 1e-8 in every reported run (parser default 1e-6).

  Differences from the official code: (a) it keeps the state and runs the
  centring, covariance and log-det in float64; here the computation runs in
  the promoted dtype of z and the state (float64 views under x64 give a
  float64 initial state and reproduce it) and ``logdet_dtype=jnp.float64``
  factorises in float64 only; (b) when float32 rounding makes R + eps I
  indefinite (collapsed or rank-deficient batches), a jitter
  ``1.9e-6 * tr(R)`` is added so that the loss and its gradient stay finite
  (`psd_logdet`; ``jitter=0.0`` disables it); (c) the state is threaded
  explicitly and returned, instead of being mutated inside the module (it
  changes on every call, as there).

  Args:
    views: ``[V=2, n, D]`` branch embeddings (projector outputs;
      ``jnp.stack([z1, z2])``) or ``(z1, z2)``; local shard with ``axis_name``.
    state: `CorInfoMaxState` from `corinfomax_init_state` or the last step
      (replicated across devices); ``None``: the initial state (R = I,
      mu = 0) in the views' dtype promoted to at least float32.
    alpha: invariance weight (``sim_loss_weight``).
    la_R: forgetting factor of R (weight of the *old* estimate).
    la_mu: forgetting factor of mu.
    eps: ridge in the log-dets (``R_eps_weight``).
    normalize: L2-normalise z first (official ``--normalize_on``, used in all
      runs): ``z / max(||z||, 1e-12)`` as torch ``F.normalize``.
    logdet_dtype: dtype of the Cholesky (None: the computation dtype).
    jitter: extra ridge, see `psd_logdet`.
    axis_name: batch mesh axis; the batch mean (D) and the D x D moments are
      psum-ed.
  Returns:
    ``(loss, aux, new_state)``: scalar loss; aux of scalars 'invariance',
    'cov_loss', 'logdet1', 'logdet2'; ``new_state`` (stop-gradiented, in the
    dtype of ``state``) for the next step.

  Example:
    >>> z1, z2 = jax.random.normal(jax.random.key(0), (2, 32, 8))
    >>> loss, aux, state = corinfomax_loss(jnp.stack([z1, z2]))   # state=None: initial state
    >>> loss, aux, state = corinfomax_loss((z1, z2), state=state)
    >>> loss.shape, state.r1.shape
    ((), (8, 8))
  """
  views = as_views(views, kernel="corinfomax_loss", num_views=2, axis_name=axis_name)
  state = _resolve_state(state, views.shape[-1], views.dtype, "corinfomax_loss")
  if normalize:
    views = l2_normalize(views)
  views = views.astype(jnp.result_type(views.dtype, state.r1.dtype))
  # Shifting by the (stop-gradient) global batch mean makes the one-pass
  # moments as accurate as a two-pass centring; the value and gradient do not
  # depend on the shift.
  shift = jax.lax.stop_gradient(parallel.batch_mean(views, axis_name, axis=1))  # [2, D]
  stats = corinfomax_stats(views, state=state, normalize=False, shift1=shift[0], shift2=shift[1],
                           axis_name=axis_name)
  return corinfomax_from_stats(stats, state=state, alpha=alpha, la_R=la_R, la_mu=la_mu, eps=eps,
                               logdet_dtype=logdet_dtype, jitter=jitter)
