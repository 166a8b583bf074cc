"""The one input layout every loss kernel reads: ``views`` ``[V, N, D]``, views first.

Every kernel of `ssljax.losses` takes as its first positional argument the
embeddings of V views of the same N examples, either as one array
``[V, N, D]`` (``jnp.stack([z1, z2])``) or as a sequence of V arrays ``[N, D]``
(``(z1, z2)``). Row ``n`` of every view is the same example. A layout the
kernel cannot read raises a `ValueError` that names the expected layout; no
kernel reinterprets its input silently. See ``docs/kernels.md``.

Half-precision views (bfloat16 / float16, e.g. the projector outputs of a
``config.model.dtype='bfloat16'`` network) are promoted to float32 here, so
every kernel computes its batch statistics, Gram / kernel matrices,
log-determinants and log-sum-exps in float32 whatever its input dtype
(``docs/mixed_precision.md``); float32 and float64 pass unchanged.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp

ViewsLike = Union[jax.Array, Sequence[jax.Array]]


def upcast(x: jax.Array) -> jax.Array:
  """``x`` in at least float32: bfloat16 / float16 are promoted, other dtypes pass unchanged.

  bfloat16 keeps 8 significant bits (relative rounding 2^-8 ≈ 4e-3 per
  operation): a sum of N products, a covariance or a log-sum-exp in bf16 loses
  the digits the losses need, so the kernels compute them in float32. The cast
  is differentiable; the gradient reaches a bf16 input as bf16.

  >>> import jax.numpy as jnp
  >>> upcast(jnp.ones(2, jnp.bfloat16)).dtype, upcast(jnp.ones(2, jnp.int32)).dtype
  (dtype('float32'), dtype('int32'))
  """
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.floating) and jnp.finfo(x.dtype).bits < 32:
    return x.astype(jnp.float32)
  return x


def as_views(views: ViewsLike, *, kernel: str, num_views: Optional[int] = None,
             min_views: int = 2, name: str = "views",
             axis_name: Optional[str] = None) -> jax.Array:
  """Validates ``views`` and returns it as one ``[V, N, D]`` array.

  Args:
    views: ``[V, N, D]`` array, or a sequence of V arrays ``[N, D]`` of one shape.
    kernel: the calling kernel's name, for the error message.
    num_views: the exact V the kernel needs (two-view methods: 2), or ``None``.
    min_views: the least V accepted when ``num_views`` is ``None``.
    name: the argument's name, for the error message.
    axis_name: the kernel's ``axis_name``. Without one (global arrays), a
      batch with fewer examples than views (``N < V``) is rejected: it is
      almost always an examples-first ``[N, V, D]`` array. With one, N is a
      per-device shard and may legitimately be small, so the check is skipped.
  Returns:
    The views as one array ``[V, N, D]``, half precision promoted to float32
    (`upcast`).
  Raises:
    ValueError: for any other rank, V or shape mismatch.

  >>> import jax.numpy as jnp
  >>> z1, z2 = jnp.ones((8, 4)), jnp.zeros((8, 4))
  >>> as_views((z1, z2), kernel="demo", num_views=2).shape
  (2, 8, 4)
  >>> as_views(jnp.ones((8, 2, 4)), kernel="demo", num_views=2)
  Traceback (most recent call last):
  ...
  ValueError: demo: views must be [V=2, N, D] (views first: jnp.stack([z1, z2])) or a sequence of 2 arrays [N, D]; got an array of shape (8, 2, 4)
  """
  expected_v = f"V={num_views}" if num_views is not None else f"V>={min_views}"
  layout = (f"{name} must be [{expected_v}, N, D] (views first: jnp.stack([z1, z2])) or a "
            f"sequence of {num_views if num_views is not None else 'V'} arrays [N, D]")
  if isinstance(views, (list, tuple)):
    shapes = [getattr(v, "shape", None) for v in views]
    if not views or any(s is None or len(s) != 2 for s in shapes) or len(set(shapes)) != 1:
      raise ValueError(f"{kernel}: {layout}; got a sequence of shapes {shapes}")
    views = jnp.stack(views)
  shape = getattr(views, "shape", None)
  if shape is None or len(shape) != 3:
    raise ValueError(f"{kernel}: {layout}; got "
                     f"{'an array of shape ' + str(tuple(shape)) if shape is not None else type(views).__name__}")
  v, n, _ = shape
  if (num_views is not None and v != num_views) or (num_views is None and v < min_views):
    raise ValueError(f"{kernel}: {layout}; got an array of shape {tuple(shape)}")
  if axis_name is None and n < v:
    raise ValueError(f"{kernel}: {layout}; got an array of shape {tuple(shape)}, i.e. {v} views "
                     f"of {n} examples. If it is examples-first [N, V, D], pass "
                     f"jnp.swapaxes({name}, 0, 1)")
  return upcast(views)  # NumPy input computes in JAX like everything else


def same_layout(a: jax.Array, b: jax.Array, *, kernel: str, names: tuple[str, str]) -> None:
  """Raises a `ValueError` unless two views arrays ``[V, N, ·]`` pair view by view and row by row."""
  if a.shape[:2] != b.shape[:2]:
    raise ValueError(f"{kernel}: {names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} must "
                     f"share V and N ([V, N, D] each, views first)")
