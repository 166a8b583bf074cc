"""Orbax checkpoints of the train state and the data-iterator state.

Orbax writes each checkpoint into a temporary directory and renames it when
complete, so an interrupted save never leaves a half-written checkpoint that
`restore_latest` would pick up. The manager is multi-host aware (every process
calls `save`; arrays are written by their owners).
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from ssljax import errors


def _encode_iterator_state(state: Any) -> dict:
  if isinstance(state, bytes):
    return {"kind": "bytes", "value": base64.b64encode(state).decode("ascii")}
  return {"kind": "json", "value": state}


def _decode_iterator_state(blob: dict) -> Any:
  if blob["kind"] == "bytes":
    return base64.b64decode(blob["value"])
  return blob["value"]


class Checkpointer:
  """Saves and restores ``(TrainState, data-iterator state)`` under ``workdir/checkpoints``."""

  def __init__(self, workdir: str, *, keep: int = 2):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, iterator_state: Any, *, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(_encode_iterator_state(iterator_state))), force=force)

  def restore(self, step: int, abstract_state):
    """Restores onto the shardings of ``abstract_state`` (a pytree of ShapeDtypeStruct).

    The saved layout does not matter: a checkpoint written by a replicated
    1-device run restores into an 8-device FSDP layout and back, because Orbax
    reads each target shard's slice of the saved global array
    (`RunSetup.abstract_state` gives the target; ``tests/train/test_fsdp.py``).
    """
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], _decode_iterator_state(restored["data"])

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def restore_latest_intact(self, abstract_state, *, say: Callable[[str], None] = print):
    """Restores the newest checkpoint that reads back whole and finite.

    A checkpoint that fails to restore (truncated or missing files, garbage
    iterator state, shapes that no longer match) or that holds NaN/Inf is
    reported by ``say`` with its step and the reason, and the next older one
    is tried. Returns ``(step, state, iterator_state)``, or ``None`` when the
    directory holds no checkpoint.

    Raises:
      errors.CheckpointError: checkpoints exist but none is intact (a run
        never silently starts from scratch over a damaged history).
    """
    steps = self.all_steps()
    if not steps:
      return None
    damaged = []
    for step in reversed(steps):
      try:
        state, data = self.restore(step, abstract_state)
        if not all_finite_on_host(state):
          raise ValueError("it holds NaN/Inf values")
      except Exception as e:  # noqa: BLE001 — any failure to read back means "damaged"
        reason = _one_line(e)
        damaged.append(f"step {step}: {reason}")
        say(f"checkpoint step {step} in {self.directory} is damaged ({reason}); "
            "trying the previous one")
        continue
      if damaged:
        moved = self._quarantine([s for s in steps if s > step])
        say(f"resumed from the newest intact checkpoint, step {step} (skipped: "
            f"{', '.join(str(d.split(':')[0]) for d in damaged)}; moved to {moved} so the run "
            "can write those steps again)")
      return step, state, data
    raise errors.CheckpointError(
        f"no intact checkpoint in {self.directory}: {'; '.join(damaged)}. Move the directory away "
        "to start from scratch, or point --workdir at another run.")

  def _quarantine(self, steps: list[int]) -> str:
    """Moves damaged checkpoints aside (never deletes them); returns where they went."""
    dest = os.path.join(os.path.dirname(self.directory), "checkpoints_damaged")
    if jax.process_index() == 0:
      os.makedirs(dest, exist_ok=True)
      stamp = time.strftime("%Y%m%d-%H%M%S")
      for step in steps:
        src = os.path.join(self.directory, str(step))
        if os.path.exists(src):
          os.replace(src, os.path.join(dest, f"{step}-{stamp}"))
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("ssljax_checkpoint_quarantine")
    self.manager.reload()
    return dest

  def reached_preemption(self, step: int) -> bool:
    return self.manager.reached_preemption(step)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def all_finite_on_host(tree) -> bool:
  """True when every floating-point leaf of a state is finite.

  Reads this process's shards only: a replicated leaf is checked whole, an
  FSDP-sharded leaf is checked on this process's slices (each process checks
  its own, and any that fails makes the restore fail there).
  """
  for x in jax.tree.leaves(tree):
    if not jnp.issubdtype(x.dtype, jnp.inexact):
      continue
    shards = [s.data for s in x.addressable_shards] if isinstance(x, jax.Array) else [x]
    if not all(np.all(np.isfinite(np.asarray(s))) for s in shards):
      return False
  return True


def _one_line(e: BaseException, limit: int = 200) -> str:
  text = " ".join(str(e).split()) or type(e).__name__
  text = f"{type(e).__name__}: {text}"
  return text if len(text) <= limit else text[:limit - 3] + "..."
