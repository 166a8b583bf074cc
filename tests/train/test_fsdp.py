"""FSDP (``config.parallel.fsdp``): same run as one device, and checkpoints move across layouts."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from ssljax import parallel
from ssljax.testing import synthetic_batches, synthetic_dataset, tiny_train_config, to_host
from ssljax.train import checkpoint as ckpt_lib
from ssljax.train import setup as setup_lib

# In the full run (`pytest -m slow`, CI), not the default one:
# several 8-device FSDP runs and cross-layout resumes (minutes).
pytestmark = pytest.mark.slow

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


def _steps(run, state, batches):
  """Runs ``batches``; one rng for all steps (the step folds in ``state.step``, as the loop does)."""
  step, losses = run.jitted_step(), []
  for b in batches:
    b = jax.device_put(b, parallel.batch_sharding(run.mesh))
    state, metrics = step(state, b, jax.random.key(1))
    losses.append(float(to_host(metrics["loss"])))
  return state, losses


BATCHES = synthetic_batches(4, 16)


@functools.lru_cache(maxsize=None)
def _reference():
  """The replicated 1-device run: ``(host state after 3 steps, losses of 4 steps)``."""
  run = _build(_fsdp_config(fsdp=False), 1)
  state, losses = _steps(run, run.init_state(jax.random.key(0)), BATCHES[:3])
  host = jax.tree.map(to_host, state)
  _, last = _steps(run, state, BATCHES[3:])
  assert abs(losses[0] - losses[-1]) > 1e-4  # the run actually moved
  return host, losses + last


@pytest.mark.parametrize("loss_mode", ["auto", "shard_map"])
def test_fsdp_eight_devices_equal_one_device(loss_mode):
  """8-device FSDP == 1 device after 3 SGD steps (test_step's equivalence test and tolerances)."""
  s1, l1 = _reference()
  l1 = l1[:3]
  run = _build(_fsdp_config(loss_mode=loss_mode), 8)
  init = run.init_state(jax.random.key(0))
  assert _sharded_paths(init) == _sharded_paths(run.abstract_state())  # created sharded
  s8, l8 = _steps(run, init, BATCHES[:3])
  np.testing.assert_allclose(l8, l1, rtol=2e-5, atol=2e-6, err_msg=loss_mode)
  assert _sharded_paths(s8) == _sharded_paths(run.abstract_state())  # the step keeps the layout
  s8 = jax.tree.map(to_host, s8)
  for field in ("params", "batch_stats", "opt_state", "target_params"):
    _assert_tree_close(getattr(s8, field), getattr(s1, field), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("save_devices,restore_devices", [(1, 8), (8, 1)])
def test_resume_across_layouts(tmp_path, save_devices, restore_devices):
  """A checkpoint of a replicated 1-device run resumes as 8-device FSDP, and vice versa."""
  _, ref_losses = _reference()
  save_run = _build(_fsdp_config(fsdp=save_devices > 1), save_devices)
  state, first = _steps(save_run, save_run.init_state(jax.random.key(0)), BATCHES[:2])
  ckpt = ckpt_lib.Checkpointer(str(tmp_path))
  ckpt.save(2, state, {"position": 2})
  ckpt.wait()

  resume_run = _build(_fsdp_config(fsdp=restore_devices > 1), restore_devices)
  target = resume_run.abstract_state()
  restored, it = ckpt.restore(2, target)
  ckpt.close()
  assert it == {"position": 2}
  jax.tree.map(_check_sharding, restored, target)
  assert bool(_sharded_paths(target)) == (restore_devices > 1)
  _, rest = _steps(resume_run, restored, BATCHES[2:])
  np.testing.assert_allclose(first + rest, ref_losses, rtol=2e-5, atol=2e-6)


def _check_sharding(x, target):
  assert x.sharding.is_equivalent_to(target.sharding, x.ndim), (x.sharding, target.sharding)
