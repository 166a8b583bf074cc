"""The train state: everything a step reads and writes, as one pytree."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  """Pytree carried from step to step (replicated across the data mesh).

  Attributes:
    step: int32 scalar, number of optimiser updates applied.
    params: ``{'online': network params, 'probe': linear-probe params,
      'loss': learnable loss parameters per term}``.
    batch_stats: BatchNorm statistics of the online network.
    target_params / target_batch_stats: EMA target network (``{}`` if unused).
    opt_state: optax state for ``params``.
    loss_state: running statistics of stateful loss terms (e.g. CorInfoMax's
      EMA covariances), per term name.
    nonfinite_steps: int32, steps skipped because the loss or a gradient was
      NaN/Inf (the host stops training when it becomes non-zero).
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  target_params: Any
  target_batch_stats: Any
  opt_state: Any
  loss_state: Any
  nonfinite_steps: jax.Array
