"""Optimisers, learning-rate schedules and the BYOL target decay (ssljax.train.optim)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from ssljax.train import optim


# ---------------------------------------------------------------------------
# Learning-rate scaling and schedules.

@pytest.mark.parametrize("scaling, expected", [
    ("linear", 0.3 * 1024 / 256),    # base · B / 256 (SimCLR / BYOL / SSL-HSIC)
    ("sqrt", 0.3 * math.sqrt(1024)),  # base · √B (SimCLR's small-batch rule)
    ("none", 0.3),                    # CorInfoMax
])
def test_scaled_learning_rate(scaling, expected):
  assert optim.scaled_learning_rate(0.3, 1024, scaling) == pytest.approx(expected, rel=1e-12)


def test_scaled_learning_rate_rejects_unknown_rule():
  with pytest.raises(ValueError, match="lr_scaling"):
    optim.scaled_learning_rate(0.3, 256, "quadratic")


def _np_schedule(t, *, peak, total, warmup, kind, end, start):
  """Linear warm-up start → peak over ``warmup`` steps, then cosine peak → end at ``total``."""
  t = np.asarray(t, np.float64)
  warm = start + (peak - start) * t / max(warmup, 1)
  if kind == "constant":
    after = np.full_like(t, peak)
  else:
    u = np.clip((t - warmup) / (total - warmup), 0.0, 1.0)
    after = end + (peak - end) * 0.5 * (1.0 + np.cos(np.pi * u))
  return np.where(t < warmup, warm, after)


@pytest.mark.parametrize("kind", ["cosine", "constant"])
@pytest.mark.parametrize("warmup", [0, 10])
def test_make_schedule_matches_numpy_formula(kind, warmup):
  peak, total, end, start = 0.8, 50, 0.01, 0.05
  sched = optim.make_schedule(peak, total, warmup, kind=kind, end_lr=end, warmup_start_lr=start)
  steps = np.arange(total + 5)  # past the end: the last value is held
  got = np.array([float(sched(s)) for s in steps])
  want = _np_schedule(steps, peak=peak, total=total, warmup=warmup, kind=kind, end=end,
                      start=start)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # Endpoints, stated on their own.
  assert got[0] == pytest.approx(start if warmup else peak, rel=1e-6)
  assert got[warmup] == pytest.approx(peak, rel=1e-6)
  assert got[total] == pytest.approx(end if kind == "cosine" else peak, rel=1e-5, abs=1e-7)


def test_make_schedule_clips_warmup_to_the_run():
  # A warm-up as long as the run would never reach the peak; it is cut to total - 1.
  sched = optim.make_schedule(1.0, 10, 100, kind="cosine")
  assert float(sched(9)) == pytest.approx(1.0, rel=1e-6)
  assert float(sched(0)) == 0.0


def test_make_schedule_rejects_unknown_kind():
  with pytest.raises(ValueError, match="schedule"):
    optim.make_schedule(1.0, 10, 0, kind="step")


# ---------------------------------------------------------------------------
# Weight-decay masks in the optimiser builders.

def test_decay_mask_selects_matrices_and_kernels():
  params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)},
            "conv": {"kernel": jnp.ones((3, 3, 1, 4))}, "bn": {"scale": jnp.ones(4)},
            "temperature": jnp.ones(())}
  assert optim.decay_mask(params) == {"dense": {"kernel": True, "bias": False},
                                      "conv": {"kernel": True}, "bn": {"scale": False},
                                      "temperature": False}


def _optim_cfg(name, **kw):
  cfg = ml_collections.ConfigDict(dict(
      name=name, base_lr=0.5, lr_scaling="none", weight_decay=0.1, momentum=0.9,
      trust_coefficient=1e-3, warmup_epochs=0.0, warmup_start_lr=0.0, schedule="constant",
      min_lr=0.0, grad_clip_norm=0.0, decay_all=False))
  cfg.update(kw)
  return cfg


def _first_update(cfg, params, grads):
  tx, _ = optim.make_optimizer(cfg, global_batch_size=256, total_steps=100, steps_per_epoch=10)
  updates, _ = tx.update(grads, tx.init(params), params)
  return jax.tree.map(np.asarray, updates)


_PARAMS = {"kernel": jnp.array([[1.0, -2.0], [3.0, 0.5]]), "bias": jnp.array([1.0, -1.0]),
           "scale": jnp.array([2.0, 3.0])}
_ZERO_GRADS = jax.tree.map(jnp.zeros_like, _PARAMS)


def test_sgd_decays_only_ndim_gt_1():
  # Zero gradients: the whole first update is the decay term, −lr·wd·w, kernels only.
  up = _first_update(_optim_cfg("sgd"), _PARAMS, _ZERO_GRADS)
  np.testing.assert_allclose(up["kernel"], -0.5 * 0.1 * np.asarray(_PARAMS["kernel"]), rtol=1e-6)
  np.testing.assert_array_equal(up["bias"], 0.0)
  np.testing.assert_array_equal(up["scale"], 0.0)


def test_sgd_decay_all_decays_every_parameter():
  up = _first_update(_optim_cfg("sgd", decay_all=True), _PARAMS, _ZERO_GRADS)
  for k in _PARAMS:
    np.testing.assert_allclose(up[k], -0.5 * 0.1 * np.asarray(_PARAMS[k]), rtol=1e-6)


def test_adamw_decays_only_ndim_gt_1():
  # Zero gradients: Adam's step is 0, leaving −lr·wd·w on the kernel.
  up = _first_update(_optim_cfg("adamw"), _PARAMS, _ZERO_GRADS)
  np.testing.assert_allclose(up["kernel"], -0.5 * 0.1 * np.asarray(_PARAMS["kernel"]), rtol=1e-6)
  np.testing.assert_array_equal(up["bias"], 0.0)
  np.testing.assert_array_equal(up["scale"], 0.0)


def test_lars_decay_and_trust_ratio_only_on_ndim_gt_1():
  grads = {"kernel": jnp.array([[0.1, 0.3], [-0.2, 0.4]]), "bias": jnp.array([0.5, -0.5]),
           "scale": jnp.array([0.25, 1.0])}
  up = _first_update(_optim_cfg("lars"), _PARAMS, grads)
  lr, wd, eta = 0.5, 0.1, 1e-3
  w, g = np.asarray(_PARAMS["kernel"], np.float64), np.asarray(grads["kernel"], np.float64)
  u = g + wd * w
  trust = eta * np.linalg.norm(w) / np.linalg.norm(u)  # BYOL's LARS, eps = 0
  np.testing.assert_allclose(up["kernel"], -lr * trust * u, rtol=1e-5)
  # Excluded parameters: plain SGD step, no decay, no trust ratio.
  np.testing.assert_allclose(up["bias"], -lr * np.asarray(grads["bias"]), rtol=1e-6)
  np.testing.assert_allclose(up["scale"], -lr * np.asarray(grads["scale"]), rtol=1e-6)


def test_grad_clip_norm_bounds_the_update():
  cfg = _optim_cfg("sgd", weight_decay=0.0, momentum=0.0, grad_clip_norm=1.0)
  grads = {"kernel": jnp.full((2, 2), 3.0), "bias": jnp.array([4.0, 0.0]),
           "scale": jnp.zeros(2)}
  norm = math.sqrt(4 * 9.0 + 16.0)
  up = _first_update(cfg, _PARAMS, grads)
  for k in grads:
    np.testing.assert_allclose(up[k], -0.5 * np.asarray(grads[k]) / norm, rtol=1e-6)
  # Below the threshold the gradient passes unchanged.
  small = jax.tree.map(lambda x: x / (2 * norm), grads)
  up = _first_update(cfg, _PARAMS, small)
  for k in grads:
    np.testing.assert_allclose(up[k], -0.5 * np.asarray(small[k]), rtol=1e-6)


def test_make_optimizer_returns_the_scaled_schedule():
  cfg = _optim_cfg("sgd", lr_scaling="linear", schedule="cosine", warmup_epochs=2.0)
  _, sched = optim.make_optimizer(cfg, global_batch_size=512, total_steps=100,
                                  steps_per_epoch=10)
  assert float(sched(0)) == 0.0
  assert float(sched(20)) == pytest.approx(0.5 * 512 / 256, rel=1e-6)  # peak after 2 epochs


def test_make_optimizer_rejects_unknown_name():
  with pytest.raises(ValueError, match="optim.name"):
    optim.make_optimizer(_optim_cfg("rmsprop"), global_batch_size=256, total_steps=10,
                         steps_per_epoch=1)


# ---------------------------------------------------------------------------
# BYOL's target-network decay.

def test_target_ema_decay_matches_byol_formula():
  base, total = 0.996, 40
  steps = np.arange(total + 10)
  got = np.asarray(jax.vmap(lambda s: optim.target_ema_decay(s, total, base))(jnp.asarray(steps)))
  t = np.minimum(steps, total) / total
  want = 1.0 - (1.0 - base) * (np.cos(np.pi * t) + 1.0) / 2.0  # byol/utils/schedules.py
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
  assert got[0] == pytest.approx(base, abs=1e-7)                              # τ_0 = τ_base
  assert got[total // 2] == pytest.approx(1.0 - (1.0 - base) / 2, abs=1e-7)   # half-way
  assert got[total] == pytest.approx(1.0, abs=1e-7)                           # τ_T = 1
  assert np.all(got[total:] == got[total])                                    # held after T
  assert np.all(np.diff(got) >= 0)


def test_loss_params_follow_the_network_optimiser_with_ssl():
  """``loss_params_optimizer='ssl'``: params['loss'] get the network's LARS update (SwAV's
  prototypes under main_swav.py's LARC), ``'adam'`` gets Adam(loss_params_lr)."""
  from ssljax import config as config_lib
  c = config_lib.base_config()
  c.optim.warmup_epochs = 0.0
  w = jax.random.normal(jax.random.key(0), (6, 4))
  g = jax.random.normal(jax.random.key(1), (6, 4))
  params = {"online": {"w": w}, "probe": {"b": jnp.zeros(3)}, "loss": {"prototypes": w}}
  grads = {"online": {"w": g}, "probe": {"b": jnp.ones(3)}, "loss": {"prototypes": g}}

  def loss_update(name):
    with c.unlocked():
      c.optim.loss_params_optimizer = name
    tx, _ = optim.make_train_optimizer(c, steps_per_epoch=10, total_steps=100)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates

  u = loss_update("ssl")
  np.testing.assert_allclose(u["loss"]["prototypes"], u["online"]["w"], rtol=1e-6)
  # LARS: the step is lr · η · ||w|| / ||g + wd·w|| along g + wd·w (no momentum yet).
  lr = 0.3 * c.data.batch_size / 256
  d = g + c.optim.weight_decay * w
  expected = -lr * c.optim.trust_coefficient * jnp.linalg.norm(w) / jnp.linalg.norm(d) * d
  np.testing.assert_allclose(u["loss"]["prototypes"], expected, rtol=1e-5)
  adam = loss_update("adam")["loss"]["prototypes"]   # Adam's first step: -lr · sign(g)
  np.testing.assert_allclose(adam, -c.optim.loss_params_lr * jnp.sign(g), rtol=1e-4)
