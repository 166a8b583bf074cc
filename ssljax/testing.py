"""Test utilities: the "N devices == 1 device" check used for every kernel.

`distributed_value_and_grad` evaluates a global-batch function three ways:

* ``'single'``: ``jax.value_and_grad`` on one device with the whole batch;
* ``'jit'``: ``jax.jit`` with batch-sharded inputs on an ``Auto`` ``('data',)``
  mesh (what the train step does);
* ``'shard_map'``: the function runs per device inside ``jax.shard_map`` with
  ``axis_name='data'`` and the gradient is taken *outside* (what a researcher
  with a hand-written loop does).

`assert_distributed_equivalence` checks that all three agree, which catches a
loss that forgets a collective, a wrong normaliser (local vs global N) and a
gradient scaled by the device count.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel


def _spec(batch_axis: Optional[int], ndim: int) -> P:
  if batch_axis is None:
    return P()
  parts = [None] * ndim
  parts[batch_axis] = parallel.DATA_AXIS
  return P(*parts)


def distributed_value_and_grad(fn: Callable[..., jax.Array], args: Sequence[jax.Array], *,
                               batch_axes: Sequence[Optional[int]], mode: str,
                               argnums=0, num_devices: Optional[int] = None):
  """Value and gradient of ``fn(*args, axis_name=...)`` computed in ``mode``.

  Args:
    fn: scalar function of ``args`` taking an ``axis_name`` keyword; with
      ``axis_name=None`` it must compute the global-batch value.
    args: arrays; ``batch_axes[i]`` is the batch axis of ``args[i]`` or ``None``
      for an argument that is replicated (hyper-parameters, PRNG keys, state).
    mode: ``'single'``, ``'jit'`` or ``'shard_map'``.
    argnums: differentiate with respect to these positions.
    num_devices: devices of the mesh (default: all).
  Returns:
    ``(value, grads)`` as NumPy arrays.
  """
  args = tuple(args)
  if mode == "single":
    dev = jax.devices()[0]
    args = jax.device_put(args, dev)
    out = jax.jit(jax.value_and_grad(functools.partial(fn, axis_name=None), argnums=argnums))(*args)
    return jax.tree.map(np.asarray, out)
  devices = jax.devices()[: (num_devices or len(jax.devices()))]
  mesh = parallel.make_data_mesh(devices)
  specs = tuple(_spec(ax, jnp.ndim(a)) for ax, a in zip(batch_axes, args))
  for a, ax in zip(args, batch_axes):
    if ax is not None:
      parallel.check_divisible(a.shape[ax], len(devices), what="test batch")
  args = tuple(jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, specs))
  if mode == "jit":
    f = functools.partial(fn, axis_name=None)
  elif mode == "shard_map":
    f = jax.shard_map(functools.partial(fn, axis_name=parallel.DATA_AXIS), mesh=mesh,
                      in_specs=specs, out_specs=P())
  else:
    raise ValueError(f"unknown mode {mode!r}; expected 'single', 'jit' or 'shard_map'")
  out = jax.jit(jax.value_and_grad(f, argnums=argnums))(*args)
  return jax.tree.map(np.asarray, out)


def assert_distributed_equivalence(fn, args, *, batch_axes, argnums=0, rtol=1e-5, atol=1e-6,
                                   modes=("jit", "shard_map"), num_devices=None):
  """Assert that value and gradient agree between one device and a sharded run."""
  if len(jax.devices()) < 2:
    raise RuntimeError(
        "distributed-equivalence checks need several devices; run the tests with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=8 (tests/conftest.py sets it).")
  ref_v, ref_g = distributed_value_and_grad(fn, args, batch_axes=batch_axes, mode="single",
                                            argnums=argnums)
  assert np.all(np.isfinite(ref_v)), "reference value is not finite"
  for mode in modes:
    v, g = distributed_value_and_grad(fn, args, batch_axes=batch_axes, mode=mode,
                                      argnums=argnums, num_devices=num_devices)
    np.testing.assert_allclose(v, ref_v, rtol=rtol, atol=atol, err_msg=f"value differs in {mode}")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=rtol, atol=atol, err_msg=f"gradient differs in {mode}"), g, ref_g)
  return ref_v, ref_g
