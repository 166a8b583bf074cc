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


def scaled_learning_rate(base_lr: float, global_batch_size: int, scaling: str) -> float:
  """Peak learning rate from the base rate and the *global* batch size.

  ``scaling``: ``'linear'`` (base·B/256, SimCLR/BYOL/SSL-HSIC), ``'sqrt'``
  (base·sqrt(B), SimCLR's small-batch rule) or ``'none'`` (CorInfoMax).
  """
  if scaling == "linear":
    return base_lr * global_batch_size / 256.0
  if scaling == "sqrt":
    return base_lr * math.sqrt(global_batch_size)
  if scaling == "none":
    return base_lr
  raise ValueError(f"optim.lr_scaling={scaling!r}; expected 'linear', 'sqrt' or 'none'")


def make_schedule(peak_lr: float, total_steps: int, warmup_steps: int, *, kind: str = "cosine",
                  end_lr: float = 0.0, warmup_start_lr: float = 0.0) -> optax.Schedule:
  """Linear warm-up from ``warmup_start_lr`` then cosine (or constant) to ``end_lr``."""
  warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
  if kind == "cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=warmup_start_lr, peak_value=peak_lr, warmup_steps=warmup_steps,
        decay_steps=max(total_steps, warmup_steps + 1), end_value=end_lr)
  if kind == "constant":
    return optax.join_schedules(
        [optax.linear_schedule(warmup_start_lr, peak_lr, max(warmup_steps, 1)),
         optax.constant_schedule(peak_lr)], [warmup_steps])
  raise ValueError(f"optim.schedule={kind!r}; expected 'cosine' or 'constant'")


def decay_mask(params):
  """True for parameters that get weight decay / LARS adaptation (ndim > 1)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(cfg: ml_collections.ConfigDict, *, global_batch_size: int,
                   total_steps: int, steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Builds the SSL optimiser from ``cfg`` (``config.optim``).

  Returns ``(optimizer, schedule)``; the schedule is returned for logging.
  """
  peak = scaled_learning_rate(cfg.base_lr, global_batch_size, cfg.lr_scaling)
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  schedule = make_schedule(peak, total_steps, warmup, kind=cfg.schedule,
                           end_lr=cfg.min_lr, warmup_start_lr=cfg.get("warmup_start_lr", 0.0))
  name = cfg.name
  if name == "lars":
    opt = optax.lars(schedule, weight_decay=cfg.weight_decay, weight_decay_mask=decay_mask,
                     trust_coefficient=cfg.trust_coefficient, eps=0.0,
                     trust_ratio_mask=decay_mask, momentum=cfg.momentum, nesterov=False)
  elif name == "sgd":
    # CorInfoMax's official runs decay every parameter; `decay_all` reproduces that.
    mask = None if cfg.get("decay_all", False) else decay_mask
    opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask=mask),
                      optax.sgd(schedule, momentum=cfg.momentum or None))
  elif name == "adamw":
    opt = optax.adamw(schedule, weight_decay=cfg.weight_decay, mask=decay_mask)
  elif name == "adam":
    opt = optax.adam(schedule)
  else:
    raise ValueError(f"optim.name={name!r}; expected one of 'lars', 'sgd', 'adamw', 'adam'")
  if cfg.get("grad_clip_norm", 0.0):
    opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
  return opt, schedule


def target_ema_decay(step, total_steps: int, base_decay: float):
  """BYOL's target decay τ_t = 1 − (1 − τ_base)·(cos(π t / T) + 1)/2 (byol/utils/schedules.py)."""
  t = jnp.minimum(step, total_steps) / max(total_steps, 1)
  return 1.0 - (1.0 - base_decay) * (jnp.cos(jnp.pi * t) + 1.0) / 2.0
