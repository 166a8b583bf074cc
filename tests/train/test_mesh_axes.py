"""The train step under Explicit mesh axes (``jax.make_mesh``'s default in recent JAX).

ssljax runs its ``('data',)`` axis as ``Auto`` (`parallel.make_data_mesh`): a
user's Explicit mesh is converted, a user's ``jax.set_mesh`` context does not
leak into the step, and an input typed on an Explicit mesh is refused in one
line instead of failing deep inside a kernel.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from jax.sharding import AxisType

from ssljax import parallel
from ssljax.testing import synthetic_batches, synthetic_dataset, tiny_train_config, to_host
from ssljax.train import setup as setup_lib

BATCHES = synthetic_batches(2, 16)


def _build(mesh):
  return setup_lib.build(tiny_train_config({"vicreg": {"weight": 1.0}}), mesh=mesh,
                         dataset=synthetic_dataset(160), total_steps=10)


def _explicit_mesh():
  mesh = jax.make_mesh((8,), (parallel.DATA_AXIS,), axis_types=(AxisType.Explicit,))
  assert mesh.axis_types == (AxisType.Explicit,)
  return mesh


def _run(run):
  """Two steps from the seed-0 state: ``(losses, host params)``; inputs on the run's mesh."""
  state, step, losses = run.init_state(jax.random.key(0)), run.jitted_step(), []
  rng = jax.device_put(jax.random.key(1), parallel.replicated_sharding(run.mesh))
  for b in BATCHES:
    state, metrics = step(state, jax.device_put(b, parallel.batch_sharding(run.mesh)), rng)
    losses.append(float(to_host(metrics["loss"])))
  return losses, jax.tree.map(to_host, state.params)


@functools.lru_cache(maxsize=None)
def _auto_reference():
  return _run(_build(parallel.make_data_mesh(jax.devices()[:8])))


def test_explicit_mesh_and_context_give_the_auto_result():
  # The user's Explicit mesh passed to build AND set as the ambient mesh.
  mesh = _explicit_mesh()
  with jax.set_mesh(mesh):
    run = _build(mesh)
    assert run.mesh.axis_types == (AxisType.Auto,)
    assert run.mesh.devices.tolist() == mesh.devices.tolist()
    losses, params = _run(run)
  ref_losses, ref_params = _auto_reference()
  assert abs(ref_losses[0] - ref_losses[1]) > 1e-4  # the steps moved the model
  # Same devices and maths, separately compiled programs: the N-device tolerance of test_step.
  np.testing.assert_allclose(losses, ref_losses, rtol=2e-5, atol=2e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6),
               params, ref_params)


def test_input_typed_on_an_explicit_mesh_is_refused_in_one_line():
  run = _build(parallel.make_data_mesh(jax.devices()[:8]))
  state = run.init_state(jax.random.key(0))
  batch = jax.device_put(BATCHES[0], parallel.batch_sharding(run.mesh))
  with jax.set_mesh(_explicit_mesh()):
    rng = jax.random.key(1)  # typed on the ambient Explicit mesh
    with pytest.raises(ValueError, match=r"train step input rng is typed on a mesh with "
                                         r"\(Explicit,\) axes"):
      run.jitted_step()(state, batch, rng)


def test_a_mesh_without_the_data_axis_is_refused():
  mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
  with pytest.raises(ValueError, match="1-D mesh with the axis 'data'"):
    _build(mesh)
