"""FSDP (``config.parallel.fsdp``): same run as one device, and checkpoints move across layouts."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ssljax import parallel
from ssljax.testing import (run_train_steps, synthetic_batches, synthetic_dataset, tiny_train_config,
                            to_host)
from ssljax.train import checkpoint as ckpt_lib
from ssljax.train import setup as setup_lib

# Small enough that the tiny ConvNet's conv1 / Dense kernels, the probe and
# their optimiser state are sharded over 8 devices (the default 2**14 would
# leave every array of the tiny model replicated).
MIN_SIZE = 64


def _fsdp_config(fsdp=True, loss_mode="auto"):
  config = tiny_train_config({"vicreg": {"weight": 1.0}}, use_target=True)
  with config.unlocked():
    config.parallel.fsdp = fsdp
    config.parallel.fsdp_min_size = MIN_SIZE
    config.parallel.loss_mode = loss_mode
  return config


def _build(config, num_devices):
  return setup_lib.build(config, mesh=parallel.make_data_mesh(jax.devices()[:num_devices]),
                         dataset=synthetic_dataset(160), total_steps=10)


def _sharded_paths(tree):
  return [jax.tree_util.keystr(p) for p, x in jax.tree_util.tree_leaves_with_path(tree)
          if not x.sharding.is_fully_replicated]


def _assert_tree_close(a, b, **tol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


def test_fsdp_rule_shards_the_large_arrays():
  run = _build(_fsdp_config(), 8)
  abstract = run.abstract_state()
  spec = abstract.params["online"]["projector"]["linear0"]["kernel"].sharding.spec
  assert spec == jax.sharding.PartitionSpec(None, "data")   # [8, 16]: the larger dim
  sharded = _sharded_paths(abstract)
  assert any(".params" in p for p in sharded) and any(".opt_state" in p for p in sharded)
  assert any(".target_params" in p for p in sharded)
  assert not any("bias" in p or "scale" in p for p in sharded)  # below MIN_SIZE
  # init_state creates the state directly in that layout; the step keeps it.
  state = run.init_state(jax.random.key(0))
  assert _sharded_paths(state) == sharded
  b = synthetic_batches(1, 16)[0]
  b = jax.device_put(b, parallel.batch_sharding(run.mesh))
  new_state, _ = run.jitted_step()(state, b, jax.random.key(1))
  assert _sharded_paths(new_state) == sharded


@pytest.mark.parametrize("loss_mode", ["auto", "shard_map"])
def test_fsdp_eight_devices_equal_one_device(loss_mode):
  """8-device FSDP == 1 device after 3 SGD steps (tolerances of test_step's equivalence test)."""
  batches = synthetic_batches(3, 16)
  s1, l1 = run_train_steps(_fsdp_config(fsdp=False), jax.devices()[:1], batches)
  assert abs(l1[0] - l1[-1]) > 1e-4  # the run actually moved
  s8, l8 = run_train_steps(_fsdp_config(), jax.devices()[:8], batches, loss_mode=loss_mode)
  np.testing.assert_allclose(l8, l1, rtol=2e-5, atol=2e-6, err_msg=loss_mode)
  for field in ("params", "batch_stats", "opt_state", "target_params"):
    _assert_tree_close(getattr(s8, field), getattr(s1, field), rtol=1e-4, atol=1e-5)


def _steps(run, state, batches, first):
  step, losses = run.jitted_step(), []
  for i, b in enumerate(batches):
    b = jax.device_put(b, parallel.batch_sharding(run.mesh))
    state, metrics = step(state, b, jax.random.key(first + i))
    losses.append(float(to_host(metrics["loss"])))
  return state, losses


@pytest.mark.parametrize("save_devices,restore_devices", [(1, 8), (8, 1)])
def test_resume_across_layouts(tmp_path, save_devices, restore_devices):
  """A checkpoint of a replicated 1-device run resumes as 8-device FSDP, and vice versa."""
  batches = synthetic_batches(4, 16)
  ref_run = _build(_fsdp_config(fsdp=False), 1)
  _, ref_losses = _steps(ref_run, ref_run.init_state(jax.random.key(0)), batches, 0)

  save_run = _build(_fsdp_config(fsdp=save_devices > 1), save_devices)
  state, first = _steps(save_run, save_run.init_state(jax.random.key(0)), batches[:2], 0)
  ckpt = ckpt_lib.Checkpointer(str(tmp_path))
  ckpt.save(2, state, {"position": 2})
  ckpt.wait()

  resume_run = _build(_fsdp_config(fsdp=restore_devices > 1), restore_devices)
  target = resume_run.abstract_state()
  restored, it = ckpt.restore(2, target)
  ckpt.close()
  assert it == {"position": 2}
  jax.tree.map(lambda x, t: _check_sharding(x, t), restored, target)
  assert bool(_sharded_paths(target)) == (restore_devices > 1)
  _, rest = _steps(resume_run, restored, batches[2:], 2)
  np.testing.assert_allclose(first + rest, ref_losses, rtol=2e-5, atol=2e-6)


def _check_sharding(x, target):
  assert x.sharding.is_equivalent_to(target.sharding, x.ndim), (x.sharding, target.sharding)
