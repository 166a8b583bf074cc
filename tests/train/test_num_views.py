"""More than two same-size views per image (``config.data.num_views``, W-MSE 4) through the train step."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest

from ssljax import errors
from ssljax.testing import objective_input_shapes, run_train_steps, synthetic_batches, tiny_train_config
from ssljax.train import step as step_lib

# W-MSE 4 on the tiny model: 2 whitening sub-batches of 8 per view, D = 4 < 8.
WMSE = {"wmse": {"w_size": 8, "w_iter": 1}}


def _four_view_config():
  config = tiny_train_config(WMSE, projector_dim=4)
  with config.unlocked():
    config.data.num_views = 4
  return config


def _data(**kw):
  return ml_collections.ConfigDict({"augmentation": "cifar", "image_size": 32,
                                    "crop_scale": None, "num_views": None, **kw})


def test_num_views_repeats_the_presets_two_views_in_turn():
  v1, v2 = step_lib.view_configs(_data())
  assert v1 != v2    # 'cifar' is asymmetric (solarisation 0 / 0.2)
  assert step_lib.view_configs(_data(num_views=4)) == (v1, v2, v1, v2)
  assert step_lib.view_configs(_data(num_views=3)) == (v1, v2, v1)


@pytest.mark.parametrize("kw", [{"num_views": 1}, {"num_views": 4, "augmentation": "multicrop"}])
def test_num_views_rejects_one_view_and_multicrop(kw):
  with pytest.raises(errors.ConfigError, match="num_views"):
    step_lib.view_configs(_data(**kw))


@pytest.mark.slow   # whole train-step compiles
def test_objective_sees_four_views():
  seen = objective_input_shapes(_four_view_config())
  assert seen["projection"] == (4, 16, 4) and seen["embedding"][:2] == (4, 16)


@pytest.mark.slow   # whole train-step compiles
def test_wmse4_eight_devices_equal_one_device():
  """W-MSE over 4 views: 8 devices == 1 device in both loss modes (losses and parameters)."""
  config = _four_view_config()
  batches = synthetic_batches(3, 16)
  s1, l1 = run_train_steps(config, jax.devices()[:1], batches, loss_mode="auto")
  assert np.all(np.isfinite(l1)) and abs(l1[0] - l1[-1]) > 1e-4, l1
  for loss_mode in ("auto", "shard_map"):
    s8, l8 = run_train_steps(config, jax.devices()[:8], batches, loss_mode=loss_mode)
    np.testing.assert_allclose(l8, l1, rtol=2e-5, atol=2e-6, err_msg=loss_mode)
    for a, b in ((s8.params, s1.params), (s8.batch_stats, s1.batch_stats)):
      jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), a, b)
