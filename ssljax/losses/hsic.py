"""SSL-HSIC: self-supervised learning by kernel dependence maximisation.

Implements Li, Pogodin, Sutherland & Gretton, "Self-Supervised Learning with
Kernel Dependence Maximization" (NeurIPS 2021, arXiv 2106.08320) and its
official JAX/Haiku code ``deepmind/ssl_hsic`` (``ssl_hsic/kernels.py``):

  L = gamma * sqrt(HSIC(Z, Z)) - HSIC(Z, Y),

where Z are the (L2-normalised) representations of the augmented views and Y
is the identity of the source image (label kernel l = 1 for two views of the
same image, 0 otherwise).

Layout. Every estimator takes the views as one array ``z: [B, K, D]`` (B
images of the *global* batch on the leading, shardable axis; K views; D
features) or as a sequence of K arrays ``[B, D]`` (stacked on axis 1). The
released training step uses K = 4 views (``experiment.py``): two online
predictions and two stop-gradient target projections,
``(p(v1), p(v2), sg(t(v2)), sg(t(v1)))``; the variant without a target network
uses K = 2 online projections. N = B*K is the number of pooled samples.

Two estimators, with the same expectation:

* ``'exact'``: quadratic in N; builds the N x N Gram matrix. With
  ``axis_name`` the views are all-gathered (N x D) and each device computes
  its own rows of the Gram matrix against the gathered batch.
* ``'rff'`` (official, default): random Fourier features, linear in N:
  O(N F D + N F^2). With ``axis_name`` only F-vectors (feature sums) and the
  F x F cross-moment are ``psum``-ed; the N x D features are never gathered.

The kernel bandwidth ``scale`` is stop-gradiented inside the loss and trained
only by `kernel_scale_objective` (the log-slope heuristic of the official
code).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special as sp_special

from ssljax import parallel

Array = jax.Array
ViewsLike = Union[Array, Sequence[Array]]
KernelLike = Union[str, Callable[[Array, Array, Array], Array]]

__all__ = [
    "pairwise_sq_dists", "imq_kernel", "gaussian_kernel", "linear_kernel",
    "label_weights", "hsic_biased", "hsic_zy_exact", "hsic_zz_exact",
    "imq_rff_amplitude_grid", "imq_rff_features", "gaussian_rff_features",
    "rff_features", "hsic_zy_rff", "hsic_zz_rff", "hsic_zy_from_features",
    "hsic_zz_from_features", "ssl_hsic_rff_stats", "ssl_hsic_rff_from_stats",
    "ssl_hsic_loss", "kernel_scale_objective",
]

# Official `pairwise_distance_square(..., maximum=1e10)`.
_MAX_SQ_DIST = 1e10


# ----------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------


def pairwise_sq_dists(x: Array, y: Array, *, maximum: float = _MAX_SQ_DIST) -> Array:
  """Squared Euclidean distances ``||x_i - y_j||^2`` clipped to ``[0, maximum]``.

  Computed as ``|x|^2 + |y|^2 - 2 x.y`` (one matmul); the clip removes the
  small negative values this expansion produces by cancellation (official
  ``pairwise_distance_square``).

  Args:
    x: [n, D].
    y: [m, D].
    maximum: upper clip, 1e10 as in the official code (avoids overflow).
  Returns:
    [n, m] squared distances.
  """
  if x.ndim != 2 or y.ndim != 2 or x.shape[-1] != y.shape[-1]:
    raise ValueError(f"pairwise_sq_dists expects x: [n, D] and y: [m, D] with the same D; "
                     f"got {x.shape} and {y.shape}.")
  x_sq = jnp.sum(x * x, axis=-1)[:, None]
  y_sq = jnp.sum(y * y, axis=-1)[None, :]
  d2 = x_sq + y_sq - 2.0 * (x @ y.T)
  return jnp.clip(d2, 0.0, maximum)


def _imq_profile(d2: Array, scale) -> Array:
  return scale / jnp.sqrt(d2 + scale**2)


def _gaussian_profile(d2: Array, scale) -> Array:
  return jnp.exp(-d2 / (2.0 * scale**2))


def imq_kernel(x: Array, y: Array, scale=1.0) -> Array:
  """Inverse multiquadric kernel ``k(x, y) = c / sqrt(||x - y||^2 + c^2)``.

  ``k(x, x) = 1``; ``c = scale`` is the bandwidth (official ``hsic_loss/scale``,
  initialised at 1). Equals ``1/sqrt(1 + ||x/c - y/c||^2)``, the form the RFF
  features approximate.

  Args:
    x: [n, D]. y: [m, D]. scale: scalar c > 0.
  Returns:
    [n, m] Gram matrix.
  """
  return _imq_profile(pairwise_sq_dists(x, y), scale)


def gaussian_kernel(x: Array, y: Array, scale=1.0) -> Array:
  """Gaussian kernel ``k(x, y) = exp(-||x - y||^2 / (2 s^2))`` with ``s = scale``.

  Not in the released SSL-HSIC code (IMQ only); the paper's kernel ablation
  uses it.

  Args:
    x: [n, D]. y: [m, D]. scale: bandwidth s > 0.
  Returns:
    [n, m] Gram matrix.
  """
  return _gaussian_profile(pairwise_sq_dists(x, y), scale)


def linear_kernel(x: Array, y: Array, scale=None) -> Array:
  """Linear kernel ``k(x, y) = x . y`` (``scale`` is ignored).

  Args:
    x: [n, D]. y: [m, D].
  Returns:
    [n, m] Gram matrix.
  """
  del scale
  return x @ y.T


_KERNELS = {"imq": imq_kernel, "gaussian": gaussian_kernel, "linear": linear_kernel}
_PROFILES = {"imq": _imq_profile, "gaussian": _gaussian_profile}


def _resolve_kernel(kernel: KernelLike) -> Callable[[Array, Array, Array], Array]:
  if callable(kernel):
    return kernel
  if kernel not in _KERNELS:
    raise ValueError(f"unknown kernel {kernel!r}; use one of {sorted(_KERNELS)} or a callable "
                     "kernel(x: [n, D], y: [m, D], scale) -> [n, m].")
  return _KERNELS[kernel]


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _as_views(z: ViewsLike, what: str = "z") -> Array:
  """Returns the views as one [B, K, D] array (K >= 2)."""
  if isinstance(z, (list, tuple)):
    if len(z) < 2:
      raise ValueError(f"{what} must hold at least 2 views; got {len(z)}.")
    shapes = {tuple(v.shape) for v in z}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
      raise ValueError(f"{what}: every view must be a [B, D] array of the same shape; got "
                       f"{[tuple(v.shape) for v in z]}.")
    z = jnp.stack(z, axis=1)
  z = jnp.asarray(z)
  if z.ndim != 3:
    raise ValueError(f"{what} must be [B, K, D] (images, views, features) or a list of K "
                     f"[B, D] arrays; got shape {z.shape}.")
  if z.shape[1] < 2:
    raise ValueError(f"{what} needs K >= 2 views per image (HSIC(Z, Y) divides by K(K-1)); "
                     f"got K={z.shape[1]}. Stack views on axis 1: z = jnp.stack([z1, z2], 1).")
  return z


def _l2_normalize(x: Array) -> Array:
  # Official experiment.py: x * rsqrt(max(|x|^2, 1e-12)).
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def _count(n):
  """A static count as a Python float: N^2 overflows int32 for N >= 46341."""
  return float(n) if isinstance(n, (int, np.integer)) else n


def _psum(x: Array, axis_name: Optional[str]) -> Array:
  """Sum of a per-device quantity over ``axis_name`` (identity without one)."""
  return parallel.batch_sum(x[None], axis_name)


def _safe_sqrt(x: Array) -> Array:
  """sqrt with a zero (sub)gradient at x <= 0 instead of inf*0 = NaN."""
  pos = x > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def label_weights(batch_size) -> Tuple[float, float]:
  """Same-image and different-image entries of the centred label Gram ``H I H``.

  For the identity label kernel over B images, ``H I H = H`` has diagonal
  ``1 - 1/B`` and off-diagonal ``-1/B`` (official ``get_label_weights``). Their
  difference ``Delta_l = w_pos - w_neg = 1`` multiplies HSIC(Z, Y). (The pooled
  N x N label Gram ``I_B (x) 1 1^T`` centred by ``H_N`` has the same two values.)

  Args:
    batch_size: B, the number of images in the global batch.
  Returns:
    ``(w_pos, w_neg) = (1 - 1/B, -1/B)``.
  """
  w_mean = 1.0 / batch_size  # row mean of the identity Gram.
  w_pos, w_neg = 1.0 - w_mean, -w_mean
  # A second centring pass is a no-op (rows of H sum to 0); kept implicit.
  return w_pos, w_neg


# ----------------------------------------------------------------------------
# Exact (quadratic) estimators
# ----------------------------------------------------------------------------


def hsic_biased(kx: Array, ky: Array) -> Array:
  """Biased (V-statistic) HSIC of two Gram matrices: ``tr(Kx H Ky H) / N^2``.

  H = I - 11^T/N. The biased empirical HSIC of Gretton et al. (2005, ALT),
  with the 1/N^2 normaliser used by SSL-HSIC.

  Args:
    kx: [N, N] Gram matrix. ky: [N, N] Gram matrix.
  Returns:
    scalar.

  Example:
    >>> x = jax.random.normal(jax.random.key(0), (8, 3))
    >>> hsic_biased(imq_kernel(x, x), linear_kernel(x, x))
  """
  if kx.ndim != 2 or kx.shape[0] != kx.shape[1] or kx.shape != ky.shape:
    raise ValueError(f"hsic_biased expects two square Gram matrices of the same shape; "
                     f"got {kx.shape} and {ky.shape}.")
  n = _count(kx.shape[0])
  kxc = kx - kx.mean(0, keepdims=True) - kx.mean(1, keepdims=True) + kx.mean()
  # tr(Kx H Ky H) = sum_ij (H Kx H)_ij (Ky)_ji.
  return jnp.sum(kxc * ky.T) / n**2


def hsic_zy_exact(z: ViewsLike, *, kernel: KernelLike = "imq", scale=1.0,
                  axis_name: Optional[str] = None) -> Array:
  """Official HSIC(Z, Y) estimator with exact kernels (quadratic in N).

  With z_i^v the view v of image i, B images, K views, N = B K, and
  ``Delta_l = 1`` (`label_weights`):

    H_ZY = Delta_l * [ 1/(B K (K-1)) sum_i sum_{v, v'} k(z_i^v, z_i^{v'})
                       - 1/N^2 sum_{n, m} k(z_n, z_m) ].

  The same-image double sum *includes* v = v' (official
  ``rff_approximate_hsic_xy``, in its exact-kernel form); for IMQ/Gaussian that
  adds the constant 1/(K-1), which does not change gradients. The docstring of
  the official code calls it "unbiased HSIC(X, Y)"; it differs from the
  V-statistic ``hsic_biased(K, L)`` in the weighting of the same-image term.

  Args:
    z: views, [B, K, D] (or a list of K [B, D] arrays); B is the local shard
      when ``axis_name`` is set.
    kernel: 'imq' (official), 'gaussian', 'linear' or a callable.
    scale: kernel bandwidth c.
    axis_name: batch mesh axis; the views are all-gathered along it.
  Returns:
    scalar H_ZY.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (16, 2, 8))
    >>> hsic_zy_exact(z, scale=1.0)
  """
  return _exact_terms(_as_views(z), _resolve_kernel(kernel), scale, axis_name)[0]


def hsic_zz_exact(z: ViewsLike, *, kernel: KernelLike = "imq", scale=1.0,
                  axis_name: Optional[str] = None) -> Array:
  """Biased HSIC(Z, Z) over the N = B K pooled views: ``tr(K H K H) / N^2``.

  Official ``rff_approximate_hsic_xx`` in exact-kernel form. Computed as
  ``||H K H||_F^2 / N^2``; with ``axis_name`` every device builds its own rows
  of K against the all-gathered views, and the column means (an N-vector) and
  the squared norm are ``psum``-ed.

  Args:
    z: views, [B, K, D] or a list of K [B, D] arrays.
    kernel: 'imq' (official), 'gaussian', 'linear' or a callable.
    scale: kernel bandwidth.
    axis_name: batch mesh axis.
  Returns:
    scalar H_ZZ >= 0.

  Example:
    >>> hsic_zz_exact(jax.random.normal(jax.random.key(0), (16, 2, 8)))
  """
  return _exact_terms(_as_views(z), _resolve_kernel(kernel), scale, axis_name)[1]


def _exact_terms(z: Array, kern, scale, axis_name: Optional[str]) -> Tuple[Array, Array]:
  """(H_ZY, H_ZZ) from one Gram matrix: this device's rows against all views."""
  b, k, d = z.shape
  bg = parallel.global_batch_size(b, axis_name)
  n_rows = bg * k
  bg, n = _count(bg), _count(n_rows)
  w_pos, w_neg = label_weights(bg)
  same = jax.vmap(lambda zi: jnp.sum(kern(zi, zi, scale)))(z)  # [b]: K x K blocks
  same = parallel.batch_sum(same, axis_name)
  x_local = z.reshape(b * k, d)
  x_all = parallel.all_gather_batch(z, axis_name).reshape(n_rows, d)
  gram = kern(x_local, x_all, scale)  # [b K, N]
  row_sum = jnp.sum(gram, axis=1)
  col_mean = parallel.batch_sum(gram, axis_name) / n  # [N]
  total = parallel.batch_sum(row_sum, axis_name)
  hsic_zy = (w_pos - w_neg) * (same / (bg * k * (k - 1)) - total / n**2)
  # ||H K H||_F^2, centred explicitly (the expanded form sum K^2 - ... loses
  # ~3 more float32 digits to cancellation).
  centred = gram - row_sum[:, None] / n - col_mean[None, :] + total / n**2
  hsic_zz = parallel.batch_sum(jnp.sum(centred**2, axis=1), axis_name) / n**2
  return hsic_zy, hsic_zz


# ----------------------------------------------------------------------------
# Random Fourier features
# ----------------------------------------------------------------------------


def _log_bessel_k(v: float, x: np.ndarray) -> np.ndarray:
  """log K_v(x) in float64 for v >= 0, x > 0, without overflow.

  Uses ``scipy.special.kve`` (K_v(x) e^x) where it is finite; where K_v
  overflows (large order, small x) it runs the forward recurrence
  ``K_{m+1} = K_{m-1} + (2m/x) K_m`` on the ratios r_m = K_{m+1}/K_m
  (r_m = 1/r_{m-1} + 2m/x, a sum of positives: stable) from the orders
  v - floor(v) and v - floor(v) + 1.
  """
  x = np.asarray(x, dtype=np.float64)
  with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
    out = np.log(sp_special.kve(v, x)) - x
  bad = ~np.isfinite(out)
  if np.any(bad):
    xb = x[bad]
    v0 = v - math.floor(v)
    steps = int(round(v - v0))
    log_k = np.log(sp_special.kve(v0, xb)) - xb
    ratio = sp_special.kve(v0 + 1.0, xb) / sp_special.kve(v0, xb)  # r_{v0}
    for j in range(steps):
      log_k = log_k + np.log(ratio)
      ratio = 1.0 / ratio + 2.0 * (v0 + j + 1) / xb
    out[bad] = log_k
  return out


@functools.lru_cache(maxsize=32)
def _amplitude_grid_cached(dim: int, num_points: int, max_amplitude: float):
  a = np.linspace(1e-12, max_amplitude, num_points)
  nu = (dim - 1) / 2.0
  log_p = nu * np.log(a) + _log_bessel_k(nu, a)
  p = np.exp(log_p - np.max(log_p))
  p /= p.sum()
  a.setflags(write=False)
  p.setflags(write=False)
  return a, p


def imq_rff_amplitude_grid(dim: int, num_points: int = 10000,
                           max_amplitude: float = 100.0) -> Tuple[np.ndarray, np.ndarray]:
  """Discrete radial law of the IMQ kernel's spectral measure in ``dim`` dims.

  The IMQ kernel 1/sqrt(1 + ||x||^2) is the Fourier transform of a spectral
  measure whose density in w is proportional to ||w||^{-(d-1)/2} K_{(d-1)/2}(||w||);
  with the surface factor a^{d-1} the amplitude a = ||w|| has density

    p(a) ∝ a^{(d-1)/2} K_{(d-1)/2}(a),   K = modified Bessel function, 2nd kind,

  decreasing from a = 0, with E[a^2] = d (equivalently w = |n| g, n ~ N(0, 1),
  g ~ N(0, I_d): a Gaussian scale mixture with a chi^2_1 variance). The grid is
  ``linspace(1e-12, max_amplitude, num_points)`` with probabilities normalised
  to sum to 1 (official ``imq_amplitude_frequency_and_probs``).

  Difference from the official code: it evaluates the Bessel function with
  ``mpmath`` (arbitrary precision); here ``scipy.special.kve`` runs in float64
  in log space, with a stable ratio recurrence where K_v overflows (d >= ~300
  at a = 1e-12). Probabilities agree to float64 rounding (relative ~1e-13);
  entries below ~1e-308 of the maximum are 0 in both.

  Grid artefacts (shared with the official code; use ``imq_spectral='exact'``
  in `rff_features` to avoid them): the grid is a left-Riemann discretisation
  with step 0.01, accurate for 2 <= d <= ~1000 (mean amplitude 4.4752 vs the
  continuous 4.4784 at d = 32; 12.7505 vs 12.7537 at d = 256). At d = 1 the
  density K_0(a) has a log singularity at 0, the first point carries 15% of the
  mass and IMQ kernel estimates are biased by up to +0.08; at d = 2048 the
  truncation at 100 lowers the mean amplitude from 36.10 to 33.87.

  Args:
    dim: feature dimension d (official: ``projector_output_size`` = 256).
    num_points: grid size (10000).
    max_amplitude: largest amplitude (100); truncates the tail, which matters
      only for large d (P(a > 100) ~ 3% at d = 2048).
  Returns:
    ``(amplitudes, probs)``: read-only float64 arrays of shape [num_points].

  Example:
    >>> a, p = imq_rff_amplitude_grid(256)
    >>> float((a**2 * p).sum())  # ~ 256
  """
  if int(dim) < 1 or int(num_points) < 2 or not max_amplitude > 0:
    raise ValueError(f"imq_rff_amplitude_grid needs dim >= 1, num_points >= 2 and "
                     f"max_amplitude > 0; got {dim}, {num_points}, {max_amplitude}.")
  return _amplitude_grid_cached(int(dim), int(num_points), float(max_amplitude))


def imq_rff_features(key: Array, z: Array, *, scale=1.0, num_features: int = 512,
                     amplitudes: Optional[Array] = None, probs: Optional[Array] = None,
                     phase_key_reuse: bool = False) -> Array:
  """Random Fourier features of the IMQ kernel: ``phi(x).phi(y) ≈ k(x, y)``.

    phi(x) = sqrt(2/F) cos(W x / c + b),   w_f = a_f u_f,  b_f ~ U[0, 2 pi),

  with u_f = g/||g||, g ~ N(0, I_d), and amplitudes a_f drawn with replacement
  from ``(amplitudes, probs)`` (the official discrete grid of
  `imq_rff_amplitude_grid`). If both are ``None`` the exact continuous law is
  sampled instead: w_f = |n_f| g_f, n_f ~ N(0, 1) (no grid discretisation or
  truncation; not in the official code). E_W,b[phi(x).phi(y)] = k(x, y).

  Key structure (official ``imq_rff_features``): ``kA, kB = split(key)``;
  amplitudes from kA, directions ``normal(kB, (F, d))`` and phases
  ``uniform(kB, (1, F))``, i.e. the official code **reuses kB** for the phases.
  Not reproduced by default: under JAX's partitionable threefry (default since
  0.5) the f-th phase is then a monotone function of the f-th flattened
  direction entry, which belongs to feature f // d. For d = 1 every phase is a
  function of its own frequency and the kernel estimate is biased (measured:
  +0.01..0.06 on IMQ values with 2e5 features); for d >= 2 only feature 0 is
  affected (bias O(1/F)) but features become correlated. Bit-equality with the
  released code is not achievable on current JAX anyway (threefry layout and
  ``random.choice`` changed), so by default the phases come from
  ``fold_in(kB, 1)``; ``phase_key_reuse=True`` reproduces the official reuse.
  Amplitudes and directions use the official keys either way.

  Args:
    key: PRNG key (the same key gives the same features on every device).
    z: [..., d] inputs.
    scale: bandwidth c (features are computed on z / c).
    num_features: F (official 512).
    amplitudes: [G] amplitude grid, or None for the exact law.
    probs: [G] grid probabilities (required with ``amplitudes``).
    phase_key_reuse: reproduce the official kB reuse for the phases (see above).
  Returns:
    [..., F] features.

  Example:
    >>> a, p = imq_rff_amplitude_grid(8)
    >>> phi = imq_rff_features(jax.random.key(0), x, scale=1.0, amplitudes=a, probs=p)
  """
  if (amplitudes is None) != (probs is None):
    raise ValueError("imq_rff_features: pass both `amplitudes` and `probs` (the grid from "
                     "imq_rff_amplitude_grid) or neither (exact continuous sampler).")
  if num_features < 1:
    raise ValueError(f"num_features must be >= 1; got {num_features}.")
  d = z.shape[-1]
  dtype = z.dtype
  k_amp, k_dir = jax.random.split(key)
  directions = jax.random.normal(k_dir, (num_features, d), dtype)
  if amplitudes is None:
    # w = |n| g: direction g/|g| and amplitude |n| |g| follow the IMQ law exactly.
    w = jnp.abs(jax.random.normal(k_amp, (num_features, 1), dtype)) * directions
  else:
    amplitudes = jnp.asarray(amplitudes, dtype)
    if amplitudes.ndim != 1 or jnp.shape(probs) != amplitudes.shape:
      raise ValueError(f"amplitudes and probs must be 1-D of equal length; got "
                       f"{amplitudes.shape} and {jnp.shape(probs)}.")
    amp = jax.random.choice(k_amp, amplitudes, shape=(num_features, 1),
                            p=jnp.asarray(probs, dtype))
    w = directions / jnp.linalg.norm(directions, axis=-1, keepdims=True) * amp
  k_phase = k_dir if phase_key_reuse else jax.random.fold_in(k_dir, 1)
  b = jax.random.uniform(k_phase, (1, num_features), dtype) * (2 * jnp.pi)
  return _cos_features(z / scale, w, b)


def _cos_features(x: Array, w: Array, b: Array) -> Array:
  f = w.shape[0]
  return jnp.sqrt(2.0 / f).astype(x.dtype) * jnp.cos(x @ w.T + b[0])


def gaussian_rff_features(key: Array, z: Array, *, scale=1.0, num_features: int = 512) -> Array:
  """Random Fourier features of the Gaussian kernel exp(-||x-y||^2 / (2 s^2)).

  phi(x) = sqrt(2/F) cos(W x / s + b), W ~ N(0, I), b ~ U[0, 2 pi) (Rahimi &
  Recht 2007). Directions and phases use independent sub-keys (not in the
  official code, which is IMQ-only).

  Args:
    key: PRNG key. z: [..., d]. scale: bandwidth s. num_features: F.
  Returns:
    [..., F] features.
  """
  if num_features < 1:
    raise ValueError(f"num_features must be >= 1; got {num_features}.")
  d = z.shape[-1]
  k_dir, k_phase = jax.random.split(key)
  w = jax.random.normal(k_dir, (num_features, d), z.dtype)
  b = jax.random.uniform(k_phase, (1, num_features), z.dtype) * (2 * jnp.pi)
  return _cos_features(z / scale, w, b)


def rff_features(key: Array, z: Array, *, kernel: str = "imq", scale=1.0,
                 num_features: int = 512, imq_spectral: str = "grid",
                 phase_key_reuse: bool = False) -> Array:
  """Feature map of ``kernel`` used by the linear-time estimators.

  * 'imq': `imq_rff_features`; ``imq_spectral='grid'`` (official) samples the
    amplitudes from ``imq_rff_amplitude_grid(d)``, 'exact' from the continuous law.
  * 'gaussian': `gaussian_rff_features`.
  * 'linear': the identity map phi(z) = z (exact, D features; key unused).

  Args:
    key: PRNG key. z: [..., d]. kernel: name. scale: bandwidth.
    num_features: F. imq_spectral: 'grid' or 'exact'.
    phase_key_reuse: see `imq_rff_features`.
  Returns:
    [..., F] features ([..., d] for 'linear').
  """
  if kernel == "imq":
    if imq_spectral == "grid":
      amps, probs = imq_rff_amplitude_grid(z.shape[-1])
    elif imq_spectral == "exact":
      amps = probs = None
    else:
      raise ValueError(f"imq_spectral must be 'grid' (official) or 'exact'; got {imq_spectral!r}.")
    return imq_rff_features(key, z, scale=scale, num_features=num_features, amplitudes=amps,
                            probs=probs, phase_key_reuse=phase_key_reuse)
  if kernel == "gaussian":
    return gaussian_rff_features(key, z, scale=scale, num_features=num_features)
  if kernel == "linear":
    return z
  raise ValueError(f"kernel {kernel!r} has no feature map; use 'imq', 'gaussian' or 'linear' "
                   "(or estimator='exact' for a callable kernel).")


def hsic_zy_from_features(phi: Array, *, axis_name: Optional[str] = None) -> Array:
  """Official RFF HSIC(Z, Y) from features of one shared draw.

    H_ZY ≈ Delta_l [ sum_i ||sum_v phi(z_i^v)||^2 / (B K (K-1))
                     - ||sum_{i,v} phi(z_i^v)||^2 / N^2 ]

  (official ``rff_approximate_hsic_xy``); its expectation over the draw is
  `hsic_zy_exact`. With ``axis_name`` a scalar and an F-vector are psum-ed.

  Args:
    phi: [B, K, F] features of the views (local shard with ``axis_name``).
    axis_name: batch mesh axis.
  Returns:
    scalar.
  """
  if phi.ndim != 3 or phi.shape[1] < 2:
    raise ValueError(f"phi must be [B, K, F] with K >= 2; got {phi.shape}.")
  b, k, _ = phi.shape
  bg = _count(parallel.global_batch_size(b, axis_name))
  n = bg * k
  w_pos, w_neg = label_weights(bg)
  per_image = jnp.sum(phi, axis=1)  # [b, F]
  same = parallel.batch_sum(jnp.sum(per_image**2, axis=-1), axis_name)
  total = parallel.batch_sum(per_image, axis_name)  # [F]
  return (w_pos - w_neg) * (same / (bg * k * (k - 1)) - jnp.sum(total**2) / n**2)


def hsic_zz_from_features(phi1: Array, phi2: Array, *, axis_name: Optional[str] = None) -> Array:
  """Official RFF HSIC(Z, Z) from two independent feature draws.

    H_ZZ ≈ || sum_n (phi1(z_n) - mu1)(phi2(z_n) - mu2)^T ||_F^2 / N^2

  over the N pooled views (official ``rff_approximate_hsic_xx``); unbiased for
  the V-statistic `hsic_zz_exact` because the two draws are independent.
  Two-pass: the means (F-vectors) are psum-ed first, then the centred F x F
  cross-moment, so no N x F array crosses devices.

  Args:
    phi1: [B, K, F1]. phi2: [B, K, F2]. axis_name: batch mesh axis.
  Returns:
    scalar >= 0.
  """
  if phi1.ndim != 3 or phi1.shape[:2] != phi2.shape[:2]:
    raise ValueError(f"phi1 and phi2 must be [B, K, F] with equal B, K; got {phi1.shape}, "
                     f"{phi2.shape}.")
  b, k = phi1.shape[:2]
  n = _count(parallel.global_batch_size(b, axis_name) * k)
  x1 = phi1.reshape(b * k, -1)
  x2 = phi2.reshape(b * k, -1)
  x1 = x1 - parallel.batch_sum(x1, axis_name) / n
  x2 = x2 - parallel.batch_sum(x2, axis_name) / n
  cross = _psum(x1.T @ x2, axis_name)
  return jnp.sum(cross**2) / n**2


def hsic_zy_rff(z: ViewsLike, key: Array, *, kernel: str = "imq", scale=1.0,
                num_features: int = 512, imq_spectral: str = "grid",
                phase_key_reuse: bool = False, axis_name: Optional[str] = None) -> Array:
  """Linear-time RFF estimate of `hsic_zy_exact` (one draw shared by all views).

  Args:
    z: [B, K, D] views. key: PRNG key (identical on all devices).
    kernel, scale, num_features, imq_spectral, phase_key_reuse: see `rff_features`.
    axis_name: batch mesh axis.
  Returns:
    scalar.

  Example:
    >>> hsic_zy_rff(z, jax.random.key(0), scale=1.0)
  """
  z = _as_views(z)
  phi = rff_features(key, z, kernel=kernel, scale=scale, num_features=num_features,
                     imq_spectral=imq_spectral, phase_key_reuse=phase_key_reuse)
  return hsic_zy_from_features(phi, axis_name=axis_name)


def hsic_zz_rff(z: ViewsLike, key1: Array, key2: Array, *, kernel: str = "imq", scale=1.0,
                num_features: int = 512, imq_spectral: str = "grid",
                phase_key_reuse: bool = False, axis_name: Optional[str] = None) -> Array:
  """Linear-time RFF estimate of `hsic_zz_exact` from two independent draws.

  ``key1`` and ``key2`` must differ (otherwise the estimate is biased upwards:
  it becomes ||Cov(phi)||_F^2). ``ssl_hsic_loss`` passes (kB, kA) where kA is
  the key of the HSIC(Z, Y) draw, as the official step does.

  Args:
    z: [B, K, D] views. key1, key2: PRNG keys of the two draws.
    kernel, scale, num_features, imq_spectral, phase_key_reuse: see `rff_features`.
    axis_name: batch mesh axis.
  Returns:
    scalar >= 0.
  """
  z = _as_views(z)
  kw = dict(kernel=kernel, scale=scale, num_features=num_features, imq_spectral=imq_spectral,
            phase_key_reuse=phase_key_reuse)
  return hsic_zz_from_features(rff_features(key1, z, **kw), rff_features(key2, z, **kw),
                               axis_name=axis_name)


# ----------------------------------------------------------------------------
# Sufficient statistics of the RFF loss
# ----------------------------------------------------------------------------


def ssl_hsic_rff_stats(phi_zy: Array, phi_zz: Array) -> Dict[str, Array]:
  """Additive sufficient statistics of the RFF SSL-HSIC loss over local rows.

  Every entry is a plain sum over this shard's images, so the statistics of a
  global batch are the ``psum`` (or tree-sum) of per-shard statistics:
  O(F^2) numbers, independent of N.

  * ``n_images``: B; ``same``: sum_i ||sum_v phi_zy(z_i^v)||^2;
  * ``sum_zy``: sum_{i,v} phi_zy (the phi2 draw of H_ZZ, [F]);
  * ``sum_zz``: sum_{i,v} phi_zz ([F]);
  * ``cross``: sum_{i,v} phi_zz phi_zy^T ([F, F], *uncentred*).

  The uncentred cross-moment loses digits when the feature means are large
  compared with their spread (float32: ~7 digits minus log10(|mu|^2 / var));
  `ssl_hsic_loss` with ``axis_name`` uses the two-pass centred reduction
  instead, which is what the train step calls.

  Args:
    phi_zy: [B, K, F] features of the shared draw (HSIC(Z,Y) and phi2 of HSIC(Z,Z)).
    phi_zz: [B, K, F'] features of the second, independent draw.
  Returns:
    dict of arrays.
  """
  if phi_zy.ndim != 3 or phi_zy.shape[:2] != phi_zz.shape[:2]:
    raise ValueError(f"phi_zy and phi_zz must be [B, K, F] with equal B, K; got {phi_zy.shape}, "
                     f"{phi_zz.shape}.")
  b, k = phi_zy.shape[:2]
  per_image = jnp.sum(phi_zy, axis=1)
  x1 = phi_zz.reshape(b * k, -1)
  x2 = phi_zy.reshape(b * k, -1)
  return {
      "n_images": jnp.asarray(b, phi_zy.dtype),
      "same": jnp.sum(per_image**2),
      "sum_zy": jnp.sum(per_image, axis=0),
      "sum_zz": jnp.sum(x1, axis=0),
      "cross": x1.T @ x2,
  }


def ssl_hsic_rff_from_stats(stats: Dict[str, Array], *, num_views: int,
                            gamma: float = 3.0) -> Tuple[Array, Dict[str, Array]]:
  """SSL-HSIC loss from (globally reduced) `ssl_hsic_rff_stats`.

    H_ZY = same / (B K (K-1)) - |sum_zy|^2 / N^2        (Delta_l = 1)
    H_ZZ = || cross - sum_zz sum_zy^T / N ||_F^2 / N^2
    L    = gamma sqrt(H_ZZ) - H_ZY

  Args:
    stats: summed statistics. num_views: K. gamma: weight of sqrt(H_ZZ).
  Returns:
    ``(loss, aux)`` with aux keys 'hsic_zy', 'hsic_zz'.
  """
  k = num_views
  bg = stats["n_images"]
  n = bg * k
  w_pos, w_neg = label_weights(bg)
  hsic_zy = (w_pos - w_neg) * (stats["same"] / (bg * k * (k - 1))
                               - jnp.sum(stats["sum_zy"]**2) / n**2)
  centred = stats["cross"] - jnp.outer(stats["sum_zz"], stats["sum_zy"]) / n
  hsic_zz = jnp.sum(centred**2) / n**2
  loss = gamma * _safe_sqrt(hsic_zz) - hsic_zy
  return loss, {"hsic_zy": hsic_zy, "hsic_zz": hsic_zz}


# ----------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------


def ssl_hsic_loss(z: ViewsLike, key: Optional[Array], *, gamma: float = 3.0,
                  num_rff_features: int = 512, scale=1.0, estimator: str = "rff",
                  kernel: KernelLike = "imq", normalize: bool = True,
                  imq_spectral: str = "grid", phase_key_reuse: bool = False,
                  axis_name: Optional[str] = None) -> Tuple[Array, Dict[str, Array]]:
  """SSL-HSIC loss ``L = gamma * sqrt(H_ZZ) - Delta_l * H_ZY`` (official ``HSICLoss``).

  Paper: Li et al. 2021, the SSL-HSIC objective L = -HSIC(Z, Y) +
  gamma sqrt(HSIC(Z, Z)) (equation number not checked against the PDF).
  Official code: ``ssl_hsic/kernels.py::HSICLoss.__call__``, gamma =
  ``regul_weight`` = 3, F = ``num_rff_features`` = 512, IMQ kernel.

  * H_ZY: `hsic_zy_exact` / its RFF estimate with one draw (key kA),
  * H_ZZ: `hsic_zz_exact` / its RFF estimate with draws (kB, kA) where
    ``kA, kB = split(key)``: phi2 of H_ZZ *is* the H_ZY draw (official RNG
    plumbing, reproduced; the features are computed once).
  * ``scale`` is wrapped in ``stop_gradient``: it is trained only by
    `kernel_scale_objective`.
  * No epsilon inside the sqrt (as official); at an exactly collapsed batch
    (H_ZZ = 0) the gradient of sqrt is taken as 0 (a subgradient) instead of
    inf * 0 = NaN; the value is unchanged.

  Views: pass the official K = 4 layout ``(p1, p2, sg(t2), sg(t1))`` (online
  predictions and stop-gradient target projections; stop-gradient is the
  caller's job) or K = 2 online projections for the no-target variant (its
  exact set-up is not in the released code).

  Train step (official): total = this loss + `kernel_scale_objective` (which
  alone trains ``scale``, with its own Adam, lr 3e-4) + the probe's CE.

  Differences from the official code:
  * with several devices the official code gives every device its own RFF
    draw on the all-gathered batch and averages the gradients (a mean over up
    to 128 independent draws); here the same ``key`` is used on all devices,
    giving one draw and the single-device estimate (vmap over keys and
    average for lower variance);
  * RFF phases are drawn from a key of their own by default
    (``phase_key_reuse=False``; see `imq_rff_features`), and the amplitude grid
    comes from scipy in float64 instead of mpmath (`imq_rff_amplitude_grid`);
  * a zero subgradient of the sqrt at H_ZZ = 0 (value unchanged).

  Distributed paths: 'rff' psum-s F-vectors and the F x F cross-moment
  (linear in N, nothing N x D is gathered); 'exact' all-gathers the views.

  Args:
    z: views [B, K, D] or a list of K arrays [B, D]; B local with ``axis_name``.
    key: PRNG key (ignored by ``estimator='exact'``, may be None there).
    gamma: weight of sqrt(H_ZZ) (official 3.0).
    num_rff_features: F (official 512).
    scale: kernel bandwidth c (official learned, init 1.0); stop-gradiented.
    estimator: 'rff' (official, linear time) or 'exact' (quadratic).
    kernel: 'imq' (official), 'gaussian', 'linear' (a callable only with 'exact').
    normalize: L2-normalise every view first, x rsqrt(max(|x|^2, 1e-12)), as
      the official ``loss_fn`` does before calling the loss.
    imq_spectral: 'grid' (official amplitude grid) or 'exact' (continuous law).
    phase_key_reuse: reproduce the official kB reuse for the RFF phases
      (default False, see `imq_rff_features`).
    axis_name: batch mesh axis for per-device shards.
  Returns:
    ``(loss, aux)``; aux: 'hsic_zy', 'hsic_zz', 'scale'.

  Example:
    >>> views = (p1, p2, jax.lax.stop_gradient(t2), jax.lax.stop_gradient(t1))
    >>> loss, aux = ssl_hsic_loss(views, key, scale=params['scale'])
  """
  z = _as_views(z)
  if estimator not in ("rff", "exact"):
    raise ValueError(f"estimator must be 'rff' or 'exact'; got {estimator!r}.")
  if normalize:
    z = _l2_normalize(z)
  c = jax.lax.stop_gradient(jnp.asarray(scale, z.dtype))
  if estimator == "exact":
    hsic_zy, hsic_zz = _exact_terms(z, _resolve_kernel(kernel), c, axis_name)
  else:
    if key is None:
      raise ValueError("estimator='rff' needs a PRNG key (the same on every device).")
    k_zy, k_zz = jax.random.split(key)
    kw = dict(kernel=kernel, scale=c, num_features=num_rff_features, imq_spectral=imq_spectral,
              phase_key_reuse=phase_key_reuse)
    phi_zy = rff_features(k_zy, z, **kw)
    phi_zz = rff_features(k_zz, z, **kw)
    hsic_zy = hsic_zy_from_features(phi_zy, axis_name=axis_name)
    hsic_zz = hsic_zz_from_features(phi_zz, phi_zy, axis_name=axis_name)
  loss = gamma * _safe_sqrt(hsic_zz) - hsic_zy
  return loss, {"hsic_zy": hsic_zy, "hsic_zz": hsic_zz, "scale": c}


def kernel_scale_objective(z: ViewsLike, key: Array, scale, *, num_samples: int = 1024,
                           kernel: str = "imq", normalize: bool = True,
                           axis_name: Optional[str] = None) -> Array:
  """Loss that trains the kernel bandwidth: minus the mean log-slope of k in D^2.

  Official ``HSICLoss.__call__`` ("grad_norm"), minimised by its own Adam
  (lr 3e-4) on ``scale`` only:

  1. for each view, draw ``num_samples // K`` image indices with replacement,
     twice and independently (2 K keys from ``split(key, 2K)``); stack the
     views into S1, S2 of ``num_samples`` rows each;
  2. D2 = stop_gradient(pairwise_sq_dists(S1, S2));
  3. g = dk/d(D2) at (D2, c); IMQ: g = -(c/2) (D2 + c^2)^(-3/2);
  4. grad_norm = mean(0.5 log(max(1e-14, g^2))); return ``-grad_norm``.

  The gradient reaches only ``scale`` (the samples are stop-gradiented). For a
  single IMQ pair the optimum is c^2 = D2 / 2. With ``axis_name`` the sampled
  rows are assembled by a masked ``psum`` of [num_samples, D] (not the batch).

  Args:
    z: views [B, K, D] or a list of [B, D].
    key: PRNG key (identical on all devices).
    scale: bandwidth c (the trainable parameter).
    num_samples: total rows per sample matrix (official 1024).
    kernel: 'imq' (official) or 'gaussian'.
    normalize: L2-normalise the views first (as the official features are).
    axis_name: batch mesh axis.
  Returns:
    scalar ``-grad_norm``.

  Example:
    >>> jax.grad(kernel_scale_objective, argnums=2)(z, key, 1.0)
  """
  z = _as_views(z)
  if kernel not in _PROFILES:
    raise ValueError(f"kernel_scale_objective needs a distance kernel ('imq' or 'gaussian'); "
                     f"got {kernel!r}.")
  b, k, d = z.shape
  per_view = int(num_samples / k)
  if per_view < 1:
    raise ValueError(f"num_samples={num_samples} gives no sample per view for K={k}.")
  z = jax.lax.stop_gradient(_l2_normalize(z) if normalize else z)
  bg = parallel.global_batch_size(b, axis_name)
  offset = parallel.local_row_offset(b, axis_name)
  keys = jax.random.split(key, 2 * k)

  def sample(keys_v):
    rows = []
    for v in range(k):
      idx = jax.random.choice(keys_v[v], bg, (per_view,)) - offset
      mine = (idx >= 0) & (idx < b)
      rows.append(jnp.where(mine[:, None], z[jnp.clip(idx, 0, b - 1), v], 0.0))
    return _psum(jnp.concatenate(rows, axis=0), axis_name)

  d2 = jax.lax.stop_gradient(pairwise_sq_dists(sample(keys[:k]), sample(keys[k:])))
  profile = _PROFILES[kernel]
  scale = jnp.asarray(scale, z.dtype)
  g = jax.grad(lambda t: jnp.sum(profile(t, scale)))(d2)
  grad_norm = jnp.mean(0.5 * jnp.log(jnp.maximum(1e-14, g**2)))
  return -grad_norm
