"""Small array operations shared by the loss kernels and the evaluators."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, *, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """``x / max(‖x‖₂, eps)`` along ``axis`` (PyTorch's ``F.normalize`` convention).

  Written as ``x · rsqrt(max(‖x‖², eps²))`` so the gradient stays finite at
  ``x = 0`` (``jnp.linalg.norm`` has a NaN gradient there); a zero vector maps
  to zero.

  >>> import jax.numpy as jnp
  >>> l2_normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
  [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
  """
  sq = jnp.sum(x * x, axis=axis, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, jnp.asarray(eps, sq.dtype) ** 2))
