"""Batch-axis collectives shared by every loss kernel, and the data-parallel mesh.

Every loss kernel in `ssljax.losses` is written for the *global* batch. It can
run in three ways, all of which give the same value and gradient:

1. On one device with the whole batch (notebooks): ``axis_name=None``.
2. Inside the jitted train step on an ``Auto``-typed ``('data',)`` mesh with
   batch-sharded inputs (``axis_name=None``): XLA inserts the collectives.
3. Inside ``jax.shard_map`` on per-device shards with ``axis_name='data'``:
   the helpers below turn local reductions into global ones with ``psum`` /
   ``all_gather``. Take ``jax.grad`` *outside* the ``shard_map``
   (``docs/distributed.md``: the pmap idiom of ``pmean``-ing gradients inside
   a ``check_vma=True`` shard_map scales them by the device count).

The helpers are the identity when ``axis_name`` is ``None``, so one formula
serves all three paths. `fsdp_spec` / `state_shardings` lay the train state
out over the same axis for FSDP (``config.parallel.fsdp``).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def batch_sum(x: jax.Array, axis_name: Optional[str] = None, axis: int = 0) -> jax.Array:
  """Sum over the (global) batch axis ``axis``; ``psum`` across ``axis_name``."""
  s = jnp.sum(x, axis=axis)
  return s if axis_name is None else lax.psum(s, axis_name)


def global_batch_size(local_n: int, axis_name: Optional[str] = None) -> jax.Array | int:
  """Global number of examples given the local leading dimension ``local_n``."""
  if axis_name is None:
    return local_n
  return lax.psum(local_n, axis_name)


def batch_mean(x: jax.Array, axis_name: Optional[str] = None, axis: int = 0) -> jax.Array:
  """Mean over the global batch axis ``axis``."""
  return batch_sum(x, axis_name, axis) / global_batch_size(x.shape[axis], axis_name)


def all_gather_batch(x: jax.Array, axis_name: Optional[str] = None, axis: int = 0) -> jax.Array:
  """Concatenate the per-device shards of ``x`` along ``axis`` (differentiable).

  ``lax.all_gather`` transposes to ``psum_scatter``, so gradients reach the
  shard that owns each row without manual plumbing.
  """
  if axis_name is None:
    return x
  return lax.all_gather(x, axis_name, axis=axis, tiled=True)


def local_row_offset(local_n: int, axis_name: Optional[str] = None) -> jax.Array | int:
  """Index in the gathered batch of this shard's first row (0 without ``axis_name``)."""
  if axis_name is None:
    return 0
  return lax.axis_index(axis_name) * local_n


def make_data_mesh(devices=None) -> Mesh:
  """A 1-D ``('data',)`` mesh over ``devices`` (default: all global devices).

  The axis is ``AxisType.Auto`` on purpose: loss kernels are written on global
  arrays without sharding annotations, and the partitioner inserts the
  collectives (all-reduce of D×D statistics for covariance-type losses, an
  all-gather for similarity matrices).
  """
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(_as_array(devices),
              (DATA_AXIS,), axis_types=(AxisType.Auto,))


def as_data_mesh(mesh: Mesh) -> Mesh:
  """``mesh`` as the library runs it: its devices on one ``Auto`` axis ``'data'``.

  ``jax.make_mesh`` makes ``Explicit`` axes by default (recent JAX: 0.10), and the
  kernels carry no sharding annotations (`make_data_mesh`), so an
  ``Explicit`` ``('data',)`` mesh is converted to ``Auto`` over the same
  devices; a mesh with other axes is refused with a one-line ValueError
  (ssljax parallelises over one batch axis).

  >>> m = as_data_mesh(jax.make_mesh((1,), ("data",), axis_types=(AxisType.Explicit,)))
  >>> m.axis_names, m.axis_types
  (('data',), (Auto,))
  """
  if tuple(mesh.axis_names) != (DATA_AXIS,):
    raise ValueError(f"ssljax runs on a 1-D mesh with the axis {DATA_AXIS!r}; got axes "
                     f"{dict(mesh.shape)}: pass parallel.make_data_mesh(devices) instead.")
  if mesh.axis_types == (AxisType.Auto,):
    return mesh
  return mesh.update(axis_types=(AxisType.Auto,))


def _as_array(devices):
  import numpy as np
  arr = np.empty(len(devices), dtype=object)
  arr[:] = devices
  return arr


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of arrays whose leading axis is the global batch."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of parameters, optimiser state and loss statistics."""
  return NamedSharding(mesh, P())


def fsdp_spec(shape: tuple[int, ...], axis_size: int, *, min_size: int) -> P:
  """The FSDP (ZeRO-3) layout of one state array of ``shape``.

  Arrays with fewer than ``min_size`` elements (biases, BatchNorm vectors,
  scalars) stay replicated: sharding them saves little memory and adds a
  collective each. Otherwise the largest dimension divisible by
  ``axis_size`` is split over ``'data'`` (ties: the last such dimension, the
  output features of a Dense/Conv kernel); an array with no divisible
  dimension stays replicated.

  >>> print(fsdp_spec((3, 3, 256, 512), 8, min_size=2**14))
  P(None, None, None, 'data')
  >>> print(fsdp_spec((2048,), 8, min_size=2**14), fsdp_spec((1000, 2049), 8, min_size=2**14))
  P() P('data', None)
  """
  if axis_size == 1 or math.prod(shape) < min_size:
    return P()
  divisible = [i for i, n in enumerate(shape) if n % axis_size == 0]
  if not divisible:
    return P()
  dim = max(divisible, key=lambda i: (shape[i], i))
  return P(*[DATA_AXIS if i == dim else None for i in range(len(shape))])


def state_shardings(abstract_state: Any, mesh: Mesh, *, fsdp: bool, min_size: int) -> Any:
  """NamedShardings of every leaf of ``abstract_state`` (arrays or ShapeDtypeStructs).

  ``fsdp=False``: everything replicated (plain data parallelism). ``fsdp=True``:
  each leaf laid out by `fsdp_spec` over the ``'data'`` axis, which then
  carries both the batch and the state (``docs/distributed.md``, FSDP).
  """
  if not fsdp:
    return jax.tree.map(lambda _: replicated_sharding(mesh), abstract_state)
  size = mesh.shape[DATA_AXIS]
  return jax.tree.map(
      lambda x: NamedSharding(mesh, fsdp_spec(tuple(x.shape), size, min_size=min_size)),
      abstract_state)


def check_divisible(global_batch: int, num_devices: int, what: str = "batch_size") -> None:
  """Raise a clear error when the global batch cannot be split evenly."""
  if global_batch % num_devices:
    raise ValueError(
        f"{what}={global_batch} is not divisible by the number of devices "
        f"({num_devices}). The batch size in ssljax configs is the *global* batch; "
        f"choose a multiple of {num_devices} (e.g. {(global_batch // num_devices + 1) * num_devices}) "
        f"or run on fewer devices.")
