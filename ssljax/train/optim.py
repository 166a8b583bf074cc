"""Optimisers and learning-rate schedules (optax), built from `config.optim`.

Weight decay and LARS trust-ratio adaptation skip biases and normalisation
parameters (every parameter with ndim <= 1), as in BYOL's
`byol/utils/optimizers.py` and solo-learn's `exclude_bias_n_norm` option.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ssljax import config as config_lib


LR_SCALINGS = {
    "linear": lambda base, b: base * b / 256.0,   # SimCLR, BYOL, SSL-HSIC
    "sqrt": lambda base, b: base * math.sqrt(b),  # SimCLR's small-batch rule
    "none": lambda base, b: base,                 # CorInfoMax
}


def scaled_learning_rate(base_lr: float, global_batch_size: int, scaling: str) -> float:
  """Peak learning rate from the base rate and the *global* batch size (`LR_SCALINGS`).

  >>> scaled_learning_rate(0.3, 1024, "linear")
  1.2
  """
  return config_lib.choose(LR_SCALINGS, scaling, "config.optim.lr_scaling")(base_lr,
                                                                            global_batch_size)


def _cosine(peak_lr, total_steps, warmup_steps, end_lr, warmup_start_lr):
  return optax.warmup_cosine_decay_schedule(
      init_value=warmup_start_lr, peak_value=peak_lr, warmup_steps=warmup_steps,
      decay_steps=max(total_steps, warmup_steps + 1), end_value=end_lr)


def _constant(peak_lr, total_steps, warmup_steps, end_lr, warmup_start_lr):
  del total_steps, end_lr
  return optax.join_schedules(
      [optax.linear_schedule(warmup_start_lr, peak_lr, max(warmup_steps, 1)),
       optax.constant_schedule(peak_lr)], [warmup_steps])


SCHEDULES = {"cosine": _cosine, "constant": _constant}


def make_schedule(peak_lr: float, total_steps: int, warmup_steps: int, *, kind: str = "cosine",
                  end_lr: float = 0.0, warmup_start_lr: float = 0.0) -> optax.Schedule:
  """Linear warm-up from ``warmup_start_lr`` then ``kind`` (`SCHEDULES`) to ``end_lr``."""
  warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
  build = config_lib.choose(SCHEDULES, kind, "config.optim.schedule")
  return build(peak_lr, total_steps, warmup_steps, end_lr, warmup_start_lr)


def decay_mask(params):
  """True for parameters that get weight decay / LARS adaptation (ndim > 1)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _lars(cfg, schedule):
  return optax.lars(schedule, weight_decay=cfg.weight_decay, weight_decay_mask=decay_mask,
                    trust_coefficient=cfg.trust_coefficient, eps=0.0,
                    trust_ratio_mask=decay_mask, momentum=cfg.momentum, nesterov=False)


def _sgd(cfg, schedule):
  # CorInfoMax's official runs decay every parameter; `decay_all` reproduces that.
  mask = None if cfg.decay_all else decay_mask
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=mask),
                     optax.sgd(schedule, momentum=cfg.momentum or None))


OPTIMIZERS = {
    "lars": _lars,
    "sgd": _sgd,
    "adamw": lambda cfg, schedule: optax.adamw(schedule, weight_decay=cfg.weight_decay,
                                               mask=decay_mask),
    "adam": lambda cfg, schedule: optax.adam(schedule),
}


def make_optimizer(cfg: ml_collections.ConfigDict, *, global_batch_size: int,
                   total_steps: int, steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Builds the SSL optimiser ``OPTIMIZERS[cfg.name]`` from ``cfg`` (``config.optim``).

  Returns ``(optimizer, schedule)``; the schedule is returned for logging.
  """
  build = config_lib.choose(OPTIMIZERS, cfg.name, "config.optim.name")
  peak = scaled_learning_rate(cfg.base_lr, global_batch_size, cfg.lr_scaling)
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  schedule = make_schedule(peak, total_steps, warmup, kind=cfg.schedule,
                           end_lr=cfg.min_lr, warmup_start_lr=cfg.warmup_start_lr)
  opt = build(cfg, schedule)
  if cfg.grad_clip_norm:
    opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
  return opt, schedule


# config.optim.loss_params_optimizer -> the optimiser of params['loss'].
LOSS_PARAMS_OPTIMIZERS = {
    "adam": lambda config, **_: optax.adam(config.optim.loss_params_lr),
    "ssl": lambda config, **kw: make_optimizer(config.optim,
                                               global_batch_size=config.data.batch_size, **kw)[0],
}


def _param_labels(params):
  return {k: jax.tree.map(lambda _: k, v) for k, v in params.items()}


def make_train_optimizer(config: ml_collections.ConfigDict, *, steps_per_epoch: int,
                         total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimiser of the whole `TrainState.params` (``{'online', 'probe', 'loss'}``).

  ``optax.multi_transform``: the SSL optimiser for the network, AdamW for the
  online probe (``config.probe``), and for learnable loss parameters
  (`LOSS_PARAMS_OPTIMIZERS[optim.loss_params_optimizer]`) either
  Adam(``optim.loss_params_lr``) — SSL-HSIC trains its kernel scale with
  Adam(3e-4) apart from LARS (``deepmind/ssl_hsic`` ``experiment.py``) — or
  ``'ssl'``, a second instance of the network's optimiser with the same
  schedule — SwAV's prototypes are a layer of the model under the same LARC
  (``facebookresearch/swav`` ``main_swav.py``).
  """
  ssl_opt, schedule = make_optimizer(config.optim, global_batch_size=config.data.batch_size,
                                     total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  probe_opt = optax.adamw(config.probe.learning_rate, weight_decay=config.probe.weight_decay)
  build_loss_opt = config_lib.choose(LOSS_PARAMS_OPTIMIZERS, config.optim.loss_params_optimizer,
                                     "config.optim.loss_params_optimizer")
  loss_opt = build_loss_opt(config, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  tx = optax.multi_transform({"online": ssl_opt, "probe": probe_opt, "loss": loss_opt},
                             _param_labels)
  return tx, schedule


def _cosine_ema(t, base, end):
  # BYOL (byol/utils/schedules.py): τ_t = end − (end − base)·(cos(π t / T) + 1)/2, end = 1.
  return end - (end - base) * (jnp.cos(jnp.pi * t) + 1.0) / 2.0


# config.model.target_ema_schedule -> τ(t ∈ [0, 1], base, end): BYOL's cosine
# from target_ema to target_ema_end (1 in BYOL; solo-learn's MoCo v2+ 0.99 → 0.999),
# or MoCo's constant momentum (target_ema, end unused).
TARGET_EMA_SCHEDULES = {
    "cosine": _cosine_ema,
    "constant": lambda t, base, end: jnp.full_like(t, base),
}


def target_ema_decay(step, total_steps: int, base_decay: float, *, end_decay: float = 1.0,
                     schedule: str = "cosine"):
  """EMA decay of the target network at ``step`` (`TARGET_EMA_SCHEDULES`).

  >>> float(target_ema_decay(0, 100, 0.99)), float(target_ema_decay(100, 100, 0.99))
  (0.9900000095367432, 1.0)
  >>> float(target_ema_decay(50, 100, 0.999, schedule="constant"))
  0.9990000128746033
  """
  fn = config_lib.choose(TARGET_EMA_SCHEDULES, schedule, "config.model.target_ema_schedule")
  t = jnp.minimum(step, total_steps) / max(total_steps, 1)
  return fn(jnp.asarray(t, jnp.float32), base_decay, end_decay)
