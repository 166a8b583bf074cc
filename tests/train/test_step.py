"""The train-step factory: N devices == 1 device, NaN guard, config errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ssljax import parallel
from ssljax.testing import run_train_steps, synthetic_batches, synthetic_dataset, tiny_train_config
from ssljax.train import setup as setup_lib


def _assert_tree_close(a, b, **tol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


def test_eight_devices_equal_one_device():
  """The same run on 8 devices and on 1 device: same losses and parameters after 3 steps.

  This is the test that catches gradient-scaling bugs (anchors.md §1.5, §3.4):
  a gradient scaled by the device count, a loss or a BatchNorm statistic
  computed on the local shard would make the trajectories diverge. Both loss
  modes are checked: global arrays under jit ('auto') and per-device kernels
  with explicit collectives ('shard_map').
  """
  config = tiny_train_config({"vicreg": {"weight": 1.0}})
  batches = synthetic_batches(3, 16)
  s1, l1 = run_train_steps(config, jax.devices()[:1], batches, loss_mode="auto")
  assert abs(l1[0] - l1[-1]) > 1e-4  # the run actually moved
  for loss_mode in ("auto", "shard_map"):
    s8, l8 = run_train_steps(config, jax.devices()[:8], batches, loss_mode=loss_mode)
    np.testing.assert_allclose(l8, l1, rtol=2e-5, atol=2e-6, err_msg=loss_mode)
    # float32: the reduction order differs between 1 and 8 devices; three SGD
    # steps amplify ulp-level (1e-7) differences, hence relative 1e-4.
    _assert_tree_close(s8.params, s1.params, rtol=1e-4, atol=1e-5)
    _assert_tree_close(s8.batch_stats, s1.batch_stats, rtol=1e-4, atol=1e-5)
    _assert_tree_close(s8.opt_state, s1.opt_state, rtol=1e-4, atol=1e-5)


def test_nonfinite_step_is_refused_and_counted():
  config = tiny_train_config({"vicreg": {"weight": 1.0}})
  with config.unlocked():
    config.optim.base_lr = 1e30  # explodes within a couple of steps
  state, _ = run_train_steps(config, jax.devices()[:1], synthetic_batches(4, 16))
  assert int(state.nonfinite_steps) > 0
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))


def _build(config, num_devices=1):
  return setup_lib.build(config, mesh=parallel.make_data_mesh(jax.devices()[:num_devices]),
                         dataset=synthetic_dataset(160))


def test_unknown_term_and_bad_keys_raise():
  with pytest.raises(ValueError, match=r"config.loss.terms key='vicrg'; expected one of \[.*'vicreg'"):
    _build(tiny_train_config({"vicrg": {}}))
  with pytest.raises(ValueError, match=r"unknown keys \['sim_coef'\]"):
    _build(tiny_train_config({"vicreg": {"sim_coef": 1.0}}))


def test_missing_network_output_says_which_field():
  config = tiny_train_config({"byol": {}})
  with pytest.raises(ValueError, match="predictor_dim"):
    _build(config)


def test_batch_not_divisible_by_devices():
  config = tiny_train_config({"vicreg": {}})
  with config.unlocked():
    config.data.batch_size = 12
  with pytest.raises(ValueError, match=r"not divisible by the number of devices \(8\)"):
    _build(config, num_devices=8)


@pytest.mark.parametrize("field,value", [
    ("optim.name", "lamb"), ("optim.lr_scaling", "cubic"), ("optim.schedule", "step"),
    ("data.augmentation", "autoaugment"), ("parallel.loss_mode", "pmap"),
    ("model.target_init", "random"), ("optim.loss_params_optimizer", "sgd")])
def test_enumerated_fields_are_checked_before_anything_runs(field, value):
  config = tiny_train_config({"vicreg": {}}, use_target=True)
  section, key = field.split(".")
  with config.unlocked():
    config[section][key] = value
  with pytest.raises(ValueError, match=rf"config.{field}='{value}'; expected one of"):
    _build(config)


def test_locked_config_rejects_typos():
  config = tiny_train_config({"vicreg": {}})
  with pytest.raises(AttributeError):
    config.data.batchsize = 3


def test_build_does_not_write_into_the_config():
  config = tiny_train_config({"vicreg": {}})
  with config.unlocked():
    config.data.num_classes = -1
  before = config.to_json()
  run = _build(config)
  assert run.num_classes == 10 and config.to_json() == before
