"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA).

Paper: Balestriero and LeCun, "LeJEPA: Provable and Scalable Self-Supervised
Learning Without the Heuristics", 2025 (arXiv 2511.08544), Sec. 4 (SIGReg,
Epps-Pulley statistic) and its PyTorch listing. Official code:
``rbalestr-lab/lejepa`` ``MINIMAL.md`` (class ``SIGReg``, the reference
implementation of the paper's runs), ``lejepa/univariate/epps_pulley.py``
(``EppsPulley``) and ``lejepa/multivariate/slicing.py``
(``SlicingUnivariateTest``). Formulas and conventions: ``docs/methods/sigreg.md``.

Per view, with ``x_i = z_iᵀ a`` the projections of the N embeddings (global
batch) on a random unit direction ``a`` (a "slice"), the empirical
characteristic function ``φ̂(t) = 1/N Σ_i exp(i t x_i)`` is compared with the
standard normal's ``φ(t) = exp(−t²/2)`` by the Epps-Pulley statistic::

  EP(a) = N ∫ |φ̂(t) − φ(t)|² w(t) dt,   w(t) = exp(−t²/2)
        = N ∫ [(mean cos(t x) − φ(t))² + (mean sin(t x))²] w(t) dt

The integrand is even in t, so the integral over ``[−t_max, t_max]`` is twice
the trapezoidal rule on ``num_points`` knots of ``[0, t_max]`` (official
``weights``: ``2·dt`` inside, ``dt`` at both ends, times ``w``).
``SIGReg = mean over views and over num_slices directions of EP(a)``; the
directions are ``a = g/||g||``, ``g ~ N(0, I_D)``, drawn from ``key``.

Defaults (official ``MINIMAL.md`` / ``EppsPulley``): ``num_slices=256``,
``t_max=3``, ``num_points=17``. The paper's listing integrates
``torch.trapz`` over ``linspace(−5, 5, 17)``: that is exactly
``t_max=5, num_points=9`` here (the positive half of the same knots).
Options not reproduced: the library's ``clip_value`` and Gauss-Hermite
quadrature.

Distributed use: only the per-view means of ``cos(t x)`` and ``sin(t x)``
(``2·V·num_slices·num_points`` numbers) are ``psum``-med, as in the official
``all_reduce`` of ``cos_mean`` / ``sin_mean``; N is the global batch. The
slices come from the replicated ``key`` (the official library seeds them from
a step counter synchronised across ranks). 1 device == n devices (value and
gradient).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views


def epps_pulley_weights(t_max: float, num_points: int) -> tuple[jax.Array, jax.Array]:
  """Knots ``t`` [T] on ``[0, t_max]`` and weights [T]: doubled trapezoid × ``exp(−t²/2)``.

  Example:
    >>> t, w = epps_pulley_weights(3.0, 4)
    >>> t.tolist(), [round(float(x), 4) for x in w]
    ([0.0, 1.0, 2.0, 3.0], [1.0, 1.2131, 0.2707, 0.0111])
  """
  if num_points < 2:
    raise ValueError(f"num_points must be ≥ 2, got {num_points}")
  t = jnp.linspace(0.0, t_max, num_points)
  dt = t_max / (num_points - 1)
  trapezoid = jnp.full((num_points,), 2 * dt).at[jnp.array([0, -1])].set(dt)
  return t, trapezoid * jnp.exp(-0.5 * t * t)


def sigreg_loss(views: ViewsLike, *, key: jax.Array, num_slices: int = 256,
                t_max: float = 3.0, num_points: int = 17,
                axis_name: Optional[str] = None) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """SIGReg: mean Epps-Pulley statistic of random 1-D projections against N(0, 1).

  A goodness-of-fit statistic, not an information quantity: ``EP / N`` is a
  weighted L2 distance between the characteristic functions of the projected
  embeddings and of N(0, 1), so SIGReg pushes the embedding distribution
  towards an isotropic Gaussian (the paper's Sec. 3: the optimal embedding
  law for downstream risk). Multiplied by N, it is O(1) under the null (for
  Gaussian embeddings its expectation is ``∫(1 − φ²) w dt`` ≈ 1.05 at the
  defaults, not 0: the V-statistic bias) and grows ∝ N otherwise. Saturates
  for a collapsed or very spread batch (``cos(t x)`` averaging to 1 or 0):
  ``t_max`` sets the scales the test sees. Random slices make it a
  stochastic estimate of the mean over all directions.

  Args:
    views: ``[V, N, D]`` embeddings (NOT normalised: the target is N(0, I)),
      V ≥ 1, or a sequence of V arrays ``[N, D]``.
    key: PRNG key of the slice directions; the same on every device.
    num_slices: number of random directions (official 256).
    t_max: upper end of the integration interval ``[0, t_max]`` (official 3).
    num_points: trapezoid knots on it (official 17).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux['max_slice_statistic']``: the largest EP over
    views and slices, without gradient.

  Example:
    >>> z = jax.random.normal(jax.random.key(0), (2, 512, 16))    # Gaussian: EP ≈ 1
    >>> loss, _ = sigreg_loss(z, key=jax.random.key(1))
    >>> bool(loss < 2.0), bool(sigreg_loss(5 * z, key=jax.random.key(1))[0] > 100.0)
    (True, True)
  """
  z = jnp.asarray(as_views(views, kernel="sigreg_loss", min_views=1, axis_name=axis_name))
  z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
  n = parallel.global_batch_size(z.shape[1], axis_name)
  # Drawn in float32 whatever the dtype: the same slices for float32 and float64 inputs.
  g = jax.random.normal(key, (z.shape[-1], num_slices), jnp.float32).astype(z.dtype)
  slices = g / jnp.linalg.norm(g, axis=0, keepdims=True)               # [D, M] unit columns
  t, weights = epps_pulley_weights(t_max, num_points)
  xt = (z @ slices)[..., None] * t.astype(z.dtype)                      # [V, n, M, T]
  cos_mean = parallel.batch_sum(jnp.cos(xt), axis_name, axis=1) / n     # [V, M, T]
  sin_mean = parallel.batch_sum(jnp.sin(xt), axis_name, axis=1) / n
  err = jnp.square(cos_mean - jnp.exp(-0.5 * t * t)) + jnp.square(sin_mean)
  statistic = (err @ weights.astype(z.dtype)) * n                       # [V, M]
  return jnp.mean(statistic), {"max_slice_statistic": lax.stop_gradient(jnp.max(statistic))}
