"""SSL-HSIC: self-supervised learning by kernel dependence maximisation.

Implements Li, Pogodin, Sutherland & Gretton, "Self-Supervised Learning with
Kernel Dependence Maximization" (NeurIPS 2021, arXiv 2106.08320) and its
official JAX/Haiku code ``deepmind/ssl_hsic`` (``ssl_hsic/kernels.py``):

  L = gamma * sqrt(HSIC(Z, Z)) - HSIC(Z, Y),

where Z are the (L2-normalised) representations of the augmented views and Y
is the identity of the source image (label kernel l = 1 for two views of the
same image, 0 otherwise).

Layout (the kernel contract, ``docs/kernels.md``). Every estimator takes the
views first: one array ``views: [V, N, D]`` (``jnp.stack([z1, z2])``; V views
of N images of the *global* batch, N being the shardable axis 1) or a sequence
of V arrays ``[N, D]``. Row n of every view is image n: the label kernel pairs
``views[v, n]`` with ``views[v', n]``. The released training step uses V = 4
views (``experiment.py``): two online predictions and two stop-gradient target
projections, ``(p(v1), p(v2), sg(t(v2)), sg(t(v1)))``; the variant without a
target network uses V = 2 online projections. The paper's K (views per image)
is V here; the pooled sample has V*N points. An examples-first ``[N, V, D]``
array raises a `ValueError` (``ssljax.losses.views.as_views``) instead of being
read as N views of V images.

Randomness comes only through the keyword ``key=``: the RFF estimators split it
as the official ``HSICLoss`` does (`ssl_hsic_loss`), so `hsic_zy_rff` and
`hsic_zz_rff` with the loss's key give exactly its two terms. The feature maps
(`rff_features`, `imq_rff_features`, `gaussian_rff_features`) are low-level
helpers that act point-wise on ``[..., D]`` arrays (flat ``[M, D]`` or views
``[V, N, D]``); they too take the points first and the key as a keyword:
``rff_features(z, *, key, ...)``.

Method page: ``docs/methods/ssl_hsic.md``.

Two estimators, with the same expectation:

* ``'exact'``: quadratic in V N; builds the (V N) x (V N) Gram matrix. With
  ``axis_name`` the views are all-gathered (V N x D) and each device computes
  its own rows of the Gram matrix against the gathered batch.
* ``'rff'`` (official, default): random Fourier features, linear in V N:
  O(V N F D + V N F^2). With ``axis_name`` only F-vectors (feature sums) and the
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
from ssljax.losses.views import as_views, same_layout, upcast
from ssljax.ops import l2_normalize

Array = jax.Array
ViewsLike = Union[Array, Sequence[Array]]  # [V, N, D] or V arrays [N, D]
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
  x, y = upcast(x), upcast(y)  # |x|^2 + |y|^2 - 2 x.y cancels: float32 at least
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


def _views(views: ViewsLike, kernel: str, axis_name: Optional[str], name: str = "views") -> Array:
  """``views`` validated as one ``[V, N, D]`` array with V >= 2 (H_ZY divides by V(V-1))."""
  return jnp.asarray(as_views(views, kernel=kernel, min_views=2, name=name, axis_name=axis_name))


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

  For the identity label kernel over N images, ``H I H = H`` has diagonal
  ``1 - 1/N`` and off-diagonal ``-1/N`` (official ``get_label_weights``). Their
  difference ``Delta_l = w_pos - w_neg = 1`` multiplies HSIC(Z, Y). (The pooled
  M x M label Gram of M = V N views, 1 for two views of the same image, centred
  by ``H_M``, has the same two values.)

  Args:
    batch_size: N, the number of images in the global batch.
  Returns:
    ``(w_pos, w_neg) = (1 - 1/N, -1/N)``.

  >>> label_weights(4)
  (0.75, -0.25)
  """
  w_mean = 1.0 / batch_size  # row mean of the identity Gram.
  w_pos, w_neg = 1.0 - w_mean, -w_mean
  # A second centring pass is a no-op (rows of H sum to 0); kept implicit.
  return w_pos, w_neg


# ----------------------------------------------------------------------------
# Exact (quadratic) estimators
# ----------------------------------------------------------------------------


def hsic_biased(kx: Array, ky: Array) -> Array:
  """Biased (V-statistic) HSIC of two Gram matrices: ``tr(Kx H Ky H) / M^2``.

  H = I - 11^T/M. The biased empirical HSIC of Gretton et al. (2005, ALT),
  with the 1/M^2 normaliser used by SSL-HSIC.

  Args:
    kx: [M, M] Gram matrix. ky: [M, M] Gram matrix.
  Returns:
    scalar.

  >>> x = jax.random.normal(jax.random.key(0), (8, 3))
  >>> hsic_biased(imq_kernel(x, x), jnp.ones((8, 8))).shape  # a constant kernel: HSIC = 0
  ()
  """
  if kx.ndim != 2 or kx.shape[0] != kx.shape[1] or kx.shape != ky.shape:
    raise ValueError(f"hsic_biased expects two square Gram matrices of the same shape; "
                     f"got {kx.shape} and {ky.shape}.")
  n = _count(kx.shape[0])
  kxc = kx - kx.mean(0, keepdims=True) - kx.mean(1, keepdims=True) + kx.mean()
  # tr(Kx H Ky H) = sum_ij (H Kx H)_ij (Ky)_ji.
  return jnp.sum(kxc * ky.T) / n**2


def hsic_zy_exact(views: ViewsLike, *, kernel: KernelLike = "imq", scale=1.0,
                  axis_name: Optional[str] = None) -> Array:
  """Official HSIC(Z, Y) estimator with exact kernels (quadratic in V N).

  With ``z_n^v = views[v, n]`` (view v of image n), N images, V views,
  M = V N pooled points and ``Delta_l = 1`` (`label_weights`):

    H_ZY = Delta_l * [ 1/(N V (V-1)) sum_n sum_{v, v'} k(z_n^v, z_n^{v'})
                       - 1/M^2 sum_{p, q} k(z_p, z_q) ].

  The same-image double sum *includes* v = v' (official
  ``rff_approximate_hsic_xy``, in its exact-kernel form, with its K = V); for
  IMQ/Gaussian that adds the constant 1/(V-1), which does not change
  gradients. The official docstring calls it "unbiased HSIC(X, Y)"; it
  differs from the V-statistic ``hsic_biased(K, L)`` in the weighting of the
  same-image term. See ``docs/methods/ssl_hsic.md``.

  Args:
    views: ``[V, N, D]`` (V >= 2) or a sequence of V arrays ``[N, D]``; N is
      the local shard when ``axis_name`` is set.
    kernel: 'imq' (official), 'gaussian', 'linear' or a callable.
    scale: kernel bandwidth c.
    axis_name: batch mesh axis; the views are all-gathered along it.
  Returns:
    scalar H_ZY.

  >>> views = jnp.zeros((2, 16, 8))  # all points equal: only the v = v' constant 1/(V-1) is left
  >>> float(hsic_zy_exact(views))
  1.0
  """
  views = _views(views, "hsic_zy_exact", axis_name)
  return _exact_terms(views, _resolve_kernel(kernel), scale, axis_name)[0]


def hsic_zz_exact(views: ViewsLike, *, kernel: KernelLike = "imq", scale=1.0,
                  axis_name: Optional[str] = None) -> Array:
  """Biased HSIC(Z, Z) over the M = V N pooled views: ``tr(K H K H) / M^2``.

  Official ``rff_approximate_hsic_xx`` in exact-kernel form. Computed as
  ``||H K H||_F^2 / M^2``; with ``axis_name`` every device builds its own rows
  of K against the all-gathered views, and the column means (an M-vector) and
  the squared norm are ``psum``-ed.

  Args:
    views: ``[V, N, D]`` or a sequence of V arrays ``[N, D]``.
    kernel: 'imq' (official), 'gaussian', 'linear' or a callable.
    scale: kernel bandwidth.
    axis_name: batch mesh axis.
  Returns:
    scalar H_ZZ >= 0.

  >>> views = jnp.zeros((2, 16, 8))  # a collapsed batch has no variance
  >>> float(hsic_zz_exact(views))
  0.0
  """
  views = _views(views, "hsic_zz_exact", axis_name)
  return _exact_terms(views, _resolve_kernel(kernel), scale, axis_name)[1]


def _exact_terms(views: Array, kern, scale, axis_name: Optional[str]) -> Tuple[Array, Array]:
  """(H_ZY, H_ZZ) from one Gram matrix: this device's rows against all views.

  Pooled points are ordered view-major (row ``v * N + n``); the estimators are
  invariant to that order, and the same-image term pairs rows n of all views.
  """
  v, n_local, d = views.shape
  n_img = parallel.global_batch_size(n_local, axis_name)
  n_img, m = _count(n_img), _count(n_img * v)
  w_pos, w_neg = label_weights(n_img)
  same = jax.vmap(lambda zn: jnp.sum(kern(zn, zn, scale)), in_axes=1)(views)  # [n]: V x V blocks
  same = parallel.batch_sum(same, axis_name)
  x_local = views.reshape(v * n_local, d)
  x_all = parallel.all_gather_batch(views, axis_name, axis=1).reshape(-1, d)
  gram = kern(x_local, x_all, scale)  # [V n, M]
  row_sum = jnp.sum(gram, axis=1)
  col_mean = parallel.batch_sum(gram, axis_name) / m  # [M]
  total = parallel.batch_sum(row_sum, axis_name)
  hsic_zy = (w_pos - w_neg) * (same / (n_img * v * (v - 1)) - total / m**2)
  # ||H K H||_F^2, centred explicitly (the expanded form sum K^2 - ... loses
  # ~3 more float32 digits to cancellation).
  centred = gram - row_sum[:, None] / m - col_mean[None, :] + total / m**2
  hsic_zz = parallel.batch_sum(jnp.sum(centred**2, axis=1), axis_name) / m**2
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

  >>> a, p = imq_rff_amplitude_grid(256)
  >>> round(float((a**2 * p).sum()))  # E[a^2] = d
  256
  """
  if int(dim) < 1 or int(num_points) < 2 or not max_amplitude > 0:
    raise ValueError(f"imq_rff_amplitude_grid needs dim >= 1, num_points >= 2 and "
                     f"max_amplitude > 0; got {dim}, {num_points}, {max_amplitude}.")
  return _amplitude_grid_cached(int(dim), int(num_points), float(max_amplitude))


def imq_rff_features(z: Array, *, key: Array, scale=1.0, num_features: int = 512,
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
    z: [..., d] points (flat [M, d] or a views array [V, N, d]; the map acts
      on each point).
    key: PRNG key (the same key gives the same features on every device).
    scale: bandwidth c (features are computed on z / c).
    num_features: F (official 512).
    amplitudes: [G] amplitude grid, or None for the exact law.
    probs: [G] grid probabilities (required with ``amplitudes``).
    phase_key_reuse: reproduce the official kB reuse for the phases (see above).
  Returns:
    [..., F] features.

  >>> a, p = imq_rff_amplitude_grid(8)
  >>> x = jax.random.normal(jax.random.key(0), (5, 8))
  >>> imq_rff_features(x, key=jax.random.key(1), num_features=64, amplitudes=a, probs=p).shape
  (5, 64)
  """
  if (amplitudes is None) != (probs is None):
    raise ValueError("imq_rff_features: pass both `amplitudes` and `probs` (the grid from "
                     "imq_rff_amplitude_grid) or neither (exact continuous sampler).")
  if num_features < 1:
    raise ValueError(f"num_features must be >= 1; got {num_features}.")
  z = upcast(z)  # cos(W z + b) of bf16 phases would be off by ~0.02 rad
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


def gaussian_rff_features(z: Array, *, key: Array, scale=1.0, num_features: int = 512) -> Array:
  """Random Fourier features of the Gaussian kernel exp(-||x-y||^2 / (2 s^2)).

  phi(x) = sqrt(2/F) cos(W x / s + b), W ~ N(0, I), b ~ U[0, 2 pi) (Rahimi &
  Recht 2007). Directions and phases use independent sub-keys (not in the
  official code, which is IMQ-only).

  Args:
    z: [..., d] points. key: PRNG key. scale: bandwidth s. num_features: F.
  Returns:
    [..., F] features.

  >>> gaussian_rff_features(jnp.zeros((3, 4)), key=jax.random.key(0), num_features=8).shape
  (3, 8)
  """
  if num_features < 1:
    raise ValueError(f"num_features must be >= 1; got {num_features}.")
  z = upcast(z)
  d = z.shape[-1]
  k_dir, k_phase = jax.random.split(key)
  w = jax.random.normal(k_dir, (num_features, d), z.dtype)
  b = jax.random.uniform(k_phase, (1, num_features), z.dtype) * (2 * jnp.pi)
  return _cos_features(z / scale, w, b)


def rff_features(z: Array, *, key: Array, kernel: str = "imq", scale=1.0,
                 num_features: int = 512, imq_spectral: str = "grid",
                 phase_key_reuse: bool = False) -> Array:
  """Feature map of ``kernel`` used by the linear-time estimators.

  * 'imq': `imq_rff_features`; ``imq_spectral='grid'`` (official) samples the
    amplitudes from ``imq_rff_amplitude_grid(d)``, 'exact' from the continuous law.
  * 'gaussian': `gaussian_rff_features`.
  * 'linear': the identity map phi(z) = z (exact, D features; key unused).

  Low-level helper on points: views ``[V, N, d]`` map to features
  ``[V, N, F]`` in the same views-first layout, which the ``*_from_features``
  estimators read.

  Args:
    z: [..., d] points. key: PRNG key. kernel: name. scale: bandwidth.
    num_features: F. imq_spectral: 'grid' or 'exact'.
    phase_key_reuse: see `imq_rff_features`.
  Returns:
    [..., F] features ([..., d] for 'linear').

  >>> views = jax.random.normal(jax.random.key(0), (2, 16, 8))
  >>> rff_features(views, key=jax.random.key(1), num_features=32).shape
  (2, 16, 32)
  """
  if kernel == "imq":
    if imq_spectral == "grid":
      amps, probs = imq_rff_amplitude_grid(z.shape[-1])
    elif imq_spectral == "exact":
      amps = probs = None
    else:
      raise ValueError(f"imq_spectral must be 'grid' (official) or 'exact'; got {imq_spectral!r}.")
    return imq_rff_features(z, key=key, scale=scale, num_features=num_features, amplitudes=amps,
                            probs=probs, phase_key_reuse=phase_key_reuse)
  if kernel == "gaussian":
    return gaussian_rff_features(z, key=key, scale=scale, num_features=num_features)
  if kernel == "linear":
    return z
  raise ValueError(f"kernel {kernel!r} has no feature map; use 'imq', 'gaussian' or 'linear' "
                   "(or estimator='exact' for a callable kernel).")


def hsic_zy_from_features(phi: Array, *, axis_name: Optional[str] = None) -> Array:
  """Official RFF HSIC(Z, Y) from features of one shared draw.

    H_ZY ≈ Delta_l [ sum_n ||sum_v phi(z_n^v)||^2 / (N V (V-1))
                     - ||sum_{n,v} phi(z_n^v)||^2 / M^2 ]

  (official ``rff_approximate_hsic_xy``); its expectation over the draw is
  `hsic_zy_exact`. With ``axis_name`` a scalar and an F-vector are psum-ed.

  Args:
    phi: [V, N, F] features of the views, views first (``rff_features(views,
      ...)``; N local with ``axis_name``).
    axis_name: batch mesh axis.
  Returns:
    scalar.

  >>> phi = jnp.ones((2, 8, 4))  # equal features: only the v = v' constant |phi|^2/(V-1) is left
  >>> float(hsic_zy_from_features(phi))
  4.0
  """
  phi = _views(phi, "hsic_zy_from_features", axis_name, name="phi")
  v, n_local, _ = phi.shape
  n_img = _count(parallel.global_batch_size(n_local, axis_name))
  m = n_img * v
  w_pos, w_neg = label_weights(n_img)
  per_image = jnp.sum(phi, axis=0)  # [n, F]: row n of every view is image n
  same = parallel.batch_sum(jnp.sum(per_image**2, axis=-1), axis_name)
  total = parallel.batch_sum(per_image, axis_name)  # [F]
  return (w_pos - w_neg) * (same / (n_img * v * (v - 1)) - jnp.sum(total**2) / m**2)


def hsic_zz_from_features(phi1: Array, phi2: Array, *, axis_name: Optional[str] = None) -> Array:
  """Official RFF HSIC(Z, Z) from two independent feature draws.

    H_ZZ ≈ || sum_p (phi1(z_p) - mu1)(phi2(z_p) - mu2)^T ||_F^2 / M^2

  over the M = V N pooled views (official ``rff_approximate_hsic_xx``);
  unbiased for the V-statistic `hsic_zz_exact` because the two draws are
  independent. Two-pass: the means (F-vectors) are psum-ed first, then the
  centred F x F cross-moment, so no M x F array crosses devices.

  Args:
    phi1: [V, N, F1]. phi2: [V, N, F2] (views first). axis_name: batch mesh axis.
  Returns:
    scalar >= 0.

  >>> float(hsic_zz_from_features(jnp.ones((2, 8, 4)), jnp.ones((2, 8, 3))))
  0.0
  """
  phi1 = _views(phi1, "hsic_zz_from_features", axis_name, name="phi1")
  phi2 = _views(phi2, "hsic_zz_from_features", axis_name, name="phi2")
  same_layout(phi1, phi2, kernel="hsic_zz_from_features", names=("phi1", "phi2"))
  v, n_local = phi1.shape[:2]
  m = _count(parallel.global_batch_size(n_local, axis_name) * v)
  x1 = phi1.reshape(v * n_local, -1)
  x2 = phi2.reshape(v * n_local, -1)
  x1 = x1 - parallel.batch_sum(x1, axis_name) / m
  x2 = x2 - parallel.batch_sum(x2, axis_name) / m
  cross = _psum(x1.T @ x2, axis_name)
  return jnp.sum(cross**2) / m**2


def _rff_kwargs(kernel, scale, num_features, imq_spectral, phase_key_reuse):
  return dict(kernel=kernel, scale=scale, num_features=num_features, imq_spectral=imq_spectral,
              phase_key_reuse=phase_key_reuse)


def _rff_draws(views: Array, key: Optional[Array], kw, *, caller: str, both: bool = True):
  """Features of the official key plumbing: ``k_zy, k_zz = split(key)``.

  Returns ``(phi_zy, phi_zz)``, each [V, N, F]: H_ZY uses the k_zy draw, H_ZZ
  the pair (k_zz, k_zy), so phi2 of H_ZZ is the H_ZY draw (official
  ``HSICLoss``). ``phi_zz`` is None unless ``both``.
  """
  if key is None:
    raise ValueError(f"{caller}: the RFF estimator needs key= (a PRNG key, the same on every "
                     "device); estimator='exact' needs none.")
  k_zy, k_zz = jax.random.split(key)
  phi_zy = rff_features(views, key=k_zy, **kw)
  return phi_zy, (rff_features(views, key=k_zz, **kw) if both else None)


def hsic_zy_rff(views: ViewsLike, *, key: Array, kernel: str = "imq", scale=1.0,
                num_features: int = 512, imq_spectral: str = "grid",
                phase_key_reuse: bool = False, axis_name: Optional[str] = None) -> Array:
  """Linear-time RFF estimate of `hsic_zy_exact` (one draw shared by all views).

  The draw comes from the first half of ``split(key)``, as in `ssl_hsic_loss`:
  with the same key and (normalised) views this is the loss's ``aux['hsic_zy']``.

  Args:
    views: ``[V, N, D]`` or a sequence of V arrays ``[N, D]``.
    key: PRNG key (identical on all devices).
    kernel, scale, num_features, imq_spectral, phase_key_reuse: see `rff_features`.
    axis_name: batch mesh axis.
  Returns:
    scalar.

  >>> views = jax.random.normal(jax.random.key(0), (2, 16, 8))
  >>> hsic_zy_rff(views, key=jax.random.key(1), num_features=64).shape
  ()
  """
  views = _views(views, "hsic_zy_rff", axis_name)
  kw = _rff_kwargs(kernel, scale, num_features, imq_spectral, phase_key_reuse)
  phi_zy, _ = _rff_draws(views, key, kw, caller="hsic_zy_rff", both=False)
  return hsic_zy_from_features(phi_zy, axis_name=axis_name)


def hsic_zz_rff(views: ViewsLike, *, key: Array, kernel: str = "imq", scale=1.0,
                num_features: int = 512, imq_spectral: str = "grid",
                phase_key_reuse: bool = False, axis_name: Optional[str] = None) -> Array:
  """Linear-time RFF estimate of `hsic_zz_exact` from two independent draws.

  One ``key``, split internally into the two draws ``k_zy, k_zz = split(key)``
  (phi1 from k_zz, phi2 from k_zy, as in `ssl_hsic_loss`): with the same key
  this is the loss's ``aux['hsic_zz']``. The draws are independent by
  construction (one shared draw would bias the estimate upwards: it becomes
  ``||Cov(phi)||_F^2``).

  Args:
    views: ``[V, N, D]`` or a sequence of V arrays ``[N, D]``.
    key: PRNG key (identical on all devices).
    kernel, scale, num_features, imq_spectral, phase_key_reuse: see `rff_features`.
    axis_name: batch mesh axis.
  Returns:
    scalar >= 0.

  >>> views = jax.random.normal(jax.random.key(0), (2, 16, 8))
  >>> bool(hsic_zz_rff(views, key=jax.random.key(1), num_features=64) >= 0)
  True
  """
  views = _views(views, "hsic_zz_rff", axis_name)
  kw = _rff_kwargs(kernel, scale, num_features, imq_spectral, phase_key_reuse)
  phi_zy, phi_zz = _rff_draws(views, key, kw, caller="hsic_zz_rff")
  return hsic_zz_from_features(phi_zz, phi_zy, axis_name=axis_name)


# ----------------------------------------------------------------------------
# Sufficient statistics of the RFF loss
# ----------------------------------------------------------------------------


def ssl_hsic_rff_stats(phi_zy: Array, phi_zz: Array, *,
                       axis_name: Optional[str] = None) -> Dict[str, Array]:
  """Additive sufficient statistics of the RFF SSL-HSIC loss, summed over images.

  Every entry is a plain sum over images, so the statistics of a global batch
  are the sum of per-chunk statistics (``axis_name`` psums them across the
  mesh): O(F^2) numbers, independent of N.

  * ``n_images``: N; ``same``: sum_n ||sum_v phi_zy(z_n^v)||^2;
  * ``sum_zy``: sum_{n,v} phi_zy (the phi2 draw of H_ZZ, [F]);
  * ``sum_zz``: sum_{n,v} phi_zz ([F']);
  * ``cross``: sum_{n,v} phi_zz phi_zy^T ([F', F], *uncentred*).

  The uncentred cross-moment loses digits when the feature means are large
  compared with their spread (float32: ~7 digits minus log10(|mu|^2 / var));
  `ssl_hsic_loss` with ``axis_name`` uses the two-pass centred reduction
  instead, which is what the train step calls.

  Args:
    phi_zy: [V, N, F] features of the shared draw (H_ZY and phi2 of H_ZZ),
      views first; a chunk summed by hand needs N >= V (`as_views` rejects a
      smaller one as a likely examples-first array) unless ``axis_name`` is set.
    phi_zz: [V, N, F'] features of the second, independent draw.
    axis_name: batch mesh axis; the statistics are psum-ed over it.
  Returns:
    dict of arrays.

  >>> phi = jnp.ones((2, 8, 4))
  >>> loss, aux = ssl_hsic_rff_from_stats(ssl_hsic_rff_stats(phi, phi), num_views=2)
  >>> float(aux['hsic_zz']), float(aux['hsic_zy'])  # as `hsic_zy_from_features(phi)`
  (0.0, 4.0)
  """
  phi_zy = _views(phi_zy, "ssl_hsic_rff_stats", axis_name, name="phi_zy")
  phi_zz = _views(phi_zz, "ssl_hsic_rff_stats", axis_name, name="phi_zz")
  same_layout(phi_zy, phi_zz, kernel="ssl_hsic_rff_stats", names=("phi_zy", "phi_zz"))
  v, n_local = phi_zy.shape[:2]
  per_image = jnp.sum(phi_zy, axis=0)  # [n, F]
  x1 = phi_zz.reshape(v * n_local, -1)
  x2 = phi_zy.reshape(v * n_local, -1)
  return {
      "n_images": jnp.asarray(parallel.global_batch_size(n_local, axis_name), phi_zy.dtype),
      "same": parallel.batch_sum(jnp.sum(per_image**2, axis=-1), axis_name),
      "sum_zy": parallel.batch_sum(per_image, axis_name),
      "sum_zz": parallel.batch_sum(x1, axis_name),
      "cross": _psum(x1.T @ x2, axis_name),
  }


def ssl_hsic_rff_from_stats(stats: Dict[str, Array], *, num_views: int,
                            gamma: float = 3.0) -> Tuple[Array, Dict[str, Array]]:
  """SSL-HSIC loss from (globally reduced) `ssl_hsic_rff_stats`.

    H_ZY = same / (N V (V-1)) - |sum_zy|^2 / M^2        (Delta_l = 1, M = V N)
    H_ZZ = || cross - sum_zz sum_zy^T / M ||_F^2 / M^2
    L    = gamma sqrt(H_ZZ) - H_ZY

  Args:
    stats: summed statistics. num_views: V. gamma: weight of sqrt(H_ZZ).
  Returns:
    ``(loss, aux)`` with aux keys 'hsic_zy', 'hsic_zz'.
  """
  v = num_views
  n_img = stats["n_images"]
  m = n_img * v
  w_pos, w_neg = label_weights(n_img)
  hsic_zy = (w_pos - w_neg) * (stats["same"] / (n_img * v * (v - 1))
                               - jnp.sum(stats["sum_zy"]**2) / m**2)
  centred = stats["cross"] - jnp.outer(stats["sum_zz"], stats["sum_zy"]) / m
  hsic_zz = jnp.sum(centred**2) / m**2
  loss = gamma * _safe_sqrt(hsic_zz) - hsic_zy
  return loss, {"hsic_zy": hsic_zy, "hsic_zz": hsic_zz}


# ----------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------


def ssl_hsic_loss(views: ViewsLike, *, key: Optional[Array] = None, gamma: float = 3.0,
                  num_rff_features: int = 512, scale=1.0, estimator: str = "rff",
                  kernel: KernelLike = "imq", normalize: bool = True,
                  imq_spectral: str = "grid", phase_key_reuse: bool = False,
                  axis_name: Optional[str] = None) -> Tuple[Array, Dict[str, Array]]:
  """SSL-HSIC loss ``L = gamma * sqrt(H_ZZ) - Delta_l * H_ZY`` (official ``HSICLoss``).

  Paper: Li et al. 2021, the SSL-HSIC objective L = -HSIC(Z, Y) +
  gamma sqrt(HSIC(Z, Z)). Official code: ``ssl_hsic/kernels.py::HSICLoss``,
  gamma = ``regul_weight`` = 3, F = ``num_rff_features`` = 512, IMQ kernel.
  Method page (formulas, conventions, measured agreement):
  ``docs/methods/ssl_hsic.md``.

  * H_ZY: `hsic_zy_exact` / its RFF estimate `hsic_zy_rff` (draw k_zy),
  * H_ZZ: `hsic_zz_exact` / its RFF estimate `hsic_zz_rff` (draws (k_zz,
    k_zy) where ``k_zy, k_zz = split(key)``: phi2 of H_ZZ *is* the H_ZY draw,
    the official RNG plumbing, reproduced; the features are computed once).
  * ``scale`` is wrapped in ``stop_gradient``: it is trained only by
    `kernel_scale_objective`.
  * No epsilon inside the sqrt (as official); at an exactly collapsed batch
    (H_ZZ = 0) the gradient of sqrt is taken as 0 (a subgradient) instead of
    inf * 0 = NaN; the value is unchanged.

  Views: the official V = 4 layout ``(p1, p2, sg(t2), sg(t1))`` (online
  predictions and stop-gradient target projections; stop-gradient is the
  caller's job) or V = 2 online projections for the no-target variant (its
  exact set-up is not in the released code). Row n of every view is image n.

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
  * normalisation is ``x / max(||x||, 1e-12)`` (`ssljax.ops.l2_normalize`)
    instead of ``x rsqrt(max(||x||^2, 1e-12))``: identical unless ||x|| < 1e-6;
  * a zero subgradient of the sqrt at H_ZZ = 0 (value unchanged).

  Distributed paths: 'rff' psum-s F-vectors and the F x F cross-moment
  (linear in N, nothing N x D is gathered); 'exact' all-gathers the views.

  Args:
    views: ``[V, N, D]`` (V >= 2 views of N images, views first:
      ``jnp.stack([z1, z2])``) or a sequence of V arrays ``[N, D]``; N local
      with ``axis_name``.
    key: PRNG key, required by ``estimator='rff'`` (the same on every device);
      ``estimator='exact'`` needs none.
    gamma: weight of sqrt(H_ZZ) (official 3.0).
    num_rff_features: F (official 512).
    scale: kernel bandwidth c (official learned, init 1.0); stop-gradiented.
    estimator: 'rff' (official, linear time) or 'exact' (quadratic).
    kernel: 'imq' (official), 'gaussian', 'linear' (a callable only with 'exact').
    normalize: L2-normalise every view first (`ssljax.ops.l2_normalize`), as
      the official ``loss_fn`` does before calling the loss.
    imq_spectral: 'grid' (official amplitude grid) or 'exact' (continuous law).
    phase_key_reuse: reproduce the official kB reuse for the RFF phases
      (default False, see `imq_rff_features`).
    axis_name: batch mesh axis for per-device shards.
  Returns:
    ``(loss, aux)``; aux: scalar 'hsic_zy', 'hsic_zz', 'scale'.

  >>> z1, z2 = jax.random.normal(jax.random.key(0), (2, 64, 16))
  >>> loss, aux = ssl_hsic_loss(jnp.stack([z1, z2]), key=jax.random.key(1))
  >>> loss.shape, sorted(aux)
  ((), ['hsic_zy', 'hsic_zz', 'scale'])
  >>> loss, aux = ssl_hsic_loss((z1, z2), estimator='exact')  # no key needed
  """
  views = _views(views, "ssl_hsic_loss", axis_name)
  if estimator not in ("rff", "exact"):
    raise ValueError(f"estimator must be 'rff' or 'exact'; got {estimator!r}.")
  if normalize:
    views = l2_normalize(views)
  c = jax.lax.stop_gradient(jnp.asarray(scale, views.dtype))
  if estimator == "exact":
    hsic_zy, hsic_zz = _exact_terms(views, _resolve_kernel(kernel), c, axis_name)
  else:
    kw = _rff_kwargs(kernel, c, num_rff_features, imq_spectral, phase_key_reuse)
    phi_zy, phi_zz = _rff_draws(views, key, kw, caller="ssl_hsic_loss")
    hsic_zy = hsic_zy_from_features(phi_zy, axis_name=axis_name)
    hsic_zz = hsic_zz_from_features(phi_zz, phi_zy, axis_name=axis_name)
  loss = gamma * _safe_sqrt(hsic_zz) - hsic_zy
  return loss, {"hsic_zy": hsic_zy, "hsic_zz": hsic_zz, "scale": c}


def kernel_scale_objective(views: ViewsLike, *, key: Array, scale, num_samples: int = 1024,
                           kernel: str = "imq", normalize: bool = True,
                           axis_name: Optional[str] = None) -> Array:
  """Loss that trains the kernel bandwidth: minus the mean log-slope of k in D^2.

  Official ``HSICLoss.__call__`` ("grad_norm"), minimised by its own Adam
  (lr 3e-4) on ``scale`` only:

  1. for each view v, draw ``num_samples // V`` image indices with
     replacement, twice and independently (2 V keys from ``split(key, 2V)``;
     keys v and V + v for view v); stack the views into S1, S2 of
     ``num_samples`` rows each;
  2. D2 = stop_gradient(pairwise_sq_dists(S1, S2));
  3. g = dk/d(D2) at (D2, c); IMQ: g = -(c/2) (D2 + c^2)^(-3/2);
  4. grad_norm = mean(0.5 log(max(1e-14, g^2))); return ``-grad_norm``.

  The gradient reaches only ``scale`` (the samples are stop-gradiented). For a
  single IMQ pair the optimum is c^2 = D2 / 2. With ``axis_name`` the sampled
  rows are assembled by a masked ``psum`` of [num_samples, D] (not the batch).

  Args:
    views: ``[V, N, D]`` or a sequence of V arrays ``[N, D]``.
    key: PRNG key (identical on all devices).
    scale: bandwidth c (the trainable parameter).
    num_samples: total rows per sample matrix (official 1024).
    kernel: 'imq' (official) or 'gaussian'.
    normalize: L2-normalise the views first (as the official features are).
    axis_name: batch mesh axis.
  Returns:
    scalar ``-grad_norm``.

  >>> views = jax.random.normal(jax.random.key(0), (4, 32, 8))
  >>> objective = lambda c: kernel_scale_objective(views, key=jax.random.key(1), scale=c)
  >>> jax.grad(objective)(1.0).shape
  ()
  """
  views = _views(views, "kernel_scale_objective", axis_name)
  if kernel not in _PROFILES:
    raise ValueError(f"kernel_scale_objective needs a distance kernel ('imq' or 'gaussian'); "
                     f"got {kernel!r}.")
  v, n_local, _ = views.shape
  per_view = int(num_samples / v)
  if per_view < 1:
    raise ValueError(f"num_samples={num_samples} gives no sample per view for V={v}.")
  z = jax.lax.stop_gradient(l2_normalize(views) if normalize else views)
  n_img = parallel.global_batch_size(n_local, axis_name)
  offset = parallel.local_row_offset(n_local, axis_name)
  keys = jax.random.split(key, 2 * v)

  def sample(keys_v):
    rows = []
    for i in range(v):
      idx = jax.random.choice(keys_v[i], n_img, (per_view,)) - offset
      mine = (idx >= 0) & (idx < n_local)
      rows.append(jnp.where(mine[:, None], z[i, jnp.clip(idx, 0, n_local - 1)], 0.0))
    return _psum(jnp.concatenate(rows, axis=0), axis_name)

  d2 = jax.lax.stop_gradient(pairwise_sq_dists(sample(keys[:v]), sample(keys[v:])))
  profile = _PROFILES[kernel]
  scale = jnp.asarray(scale, z.dtype)
  g = jax.grad(lambda t: jnp.sum(profile(t, scale)))(d2)
  grad_norm = jnp.mean(0.5 * jnp.log(jnp.maximum(1e-14, g**2)))
  return -grad_norm
