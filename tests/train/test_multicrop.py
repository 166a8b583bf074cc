"""Multi-crop views (SwAV's 2 global + M local crops) through the one train-step factory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.data import augment
from ssljax.testing import objective_input_shapes, run_train_steps, synthetic_batches, tiny_train_config
from ssljax.train import step as step_lib

# Whole train-step compiles (10-40 s each): in the slow set, which CI runs.
pytestmark = pytest.mark.slow

# Small SwAV for the 12-pixel tiny model: 2x12 + 4x6 crops, 16 prototypes, a
# 16-row queue (one batch) filled at step 1 (not at step 0) and used from step 2.
SWAV = {"swav": {"num_prototypes": 16, "freeze_prototypes_steps": 2, "queue_size": 16,
                 "queue_start_steps": 1}}


def _multicrop_config(terms):
  config = tiny_train_config(terms)
  with config.unlocked():
    config.data.augmentation = "multicrop_small"
  return config


def test_presets_give_global_crops_first_then_smaller_local_crops():
  views = step_lib.VIEW_PRESETS["multicrop"](224)
  assert [v.output_size for v in views] == [224] * 2 + [96] * 6
  assert [v.crop_scale for v in views] == [(0.14, 1.0)] * 2 + [(0.05, 0.14)] * 6
  small = step_lib.VIEW_PRESETS["multicrop_small"](28)
  assert [v.output_size for v in small] == [28, 28, 14, 14, 14, 14]
  x = augment.augment_views(jax.random.key(0), jnp.zeros((3, 14, 14, 1), jnp.uint8),
                            step_lib.VIEW_PRESETS["multicrop_small"](12), mean=(0.5,), std=(0.25,))
  assert [v.shape for v in x] == [(3, 12, 12, 1)] * 2 + [(3, 6, 6, 1)] * 4


def test_step_stacks_projections_of_all_resolutions():
  """The objective sees [V = 6, N, D] projections although the crops have two sizes."""
  seen = objective_input_shapes(_multicrop_config(SWAV))
  assert seen["projection"] == (6, 16, 8) and seen["embedding"][:2] == (6, 16)


def _decreases(terms, steps=16):
  config = _multicrop_config(terms)
  with config.unlocked():
    config.optim.name = "adam"
    config.optim.base_lr = 3e-3
  batch = synthetic_batches(1, 16, seed=3)[0]
  state, losses = run_train_steps(config, jax.devices()[:1], [batch] * steps, total_steps=steps)
  assert np.all(np.isfinite(losses)), losses
  assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
  return state


def test_multicrop_swav_step_decreases_the_loss():
  state = _decreases(SWAV)
  assert int(state.loss_state["swav"].count) == 16 and int(state.nonfinite_steps) == 0


def test_multicrop_simclr_over_all_crops_decreases_the_loss():
  _decreases({"simclr": {"temperature": 0.2}})


def test_swav_prototypes_frozen_for_the_first_steps():
  config = _multicrop_config({"swav": dict(SWAV["swav"], freeze_prototypes_steps=2)})
  batches = synthetic_batches(3, 16)
  init = run_train_steps(config, jax.devices()[:1], batches[:0], total_steps=3)[0]
  frozen = run_train_steps(config, jax.devices()[:1], batches[:2], total_steps=3)[0]
  moved = run_train_steps(config, jax.devices()[:1], batches, total_steps=3)[0]
  p0, p2, p3 = (s.params["loss"]["swav"]["prototypes"] for s in (init, frozen, moved))
  np.testing.assert_array_equal(p2, p0)
  assert np.max(np.abs(p3 - p0)) > 0


def test_swav_eight_devices_equal_one_device():
  """Multi-crop SwAV with its queue: 8 devices == 1 device in both loss modes (params and queue)."""
  config = _multicrop_config(SWAV)
  batches = synthetic_batches(3, 16)
  s1, l1 = run_train_steps(config, jax.devices()[:1], batches, loss_mode="auto")
  assert abs(l1[0] - l1[-1]) > 1e-4
  for loss_mode in ("auto", "shard_map"):
    s8, l8 = run_train_steps(config, jax.devices()[:8], batches, loss_mode=loss_mode)
    np.testing.assert_allclose(l8, l1, rtol=2e-5, atol=2e-6, err_msg=loss_mode)
    for a, b in ((s8.params, s1.params), (s8.batch_stats, s1.batch_stats)):
      jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5), a, b)
    # The queue holds unit-norm rows: 1e-4 of their norm, as the parameters' rtol
    # (float32 reduction order differs between 1 and 8 devices, amplified by the steps).
    np.testing.assert_allclose(s8.loss_state["swav"].queue, s1.loss_state["swav"].queue,
                               rtol=0, atol=1e-4, err_msg=loss_mode)
    assert int(s8.loss_state["swav"].count) == int(s1.loss_state["swav"].count) == 16
