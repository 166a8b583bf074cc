"""Orbax checkpoints of the train state and the data-iterator state.

Orbax writes each checkpoint into a temporary directory and renames it when
complete, so an interrupted save never leaves a half-written checkpoint that
`restore_latest` would pick up. The manager is multi-host aware (every process
calls `save`; arrays are written by their owners).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import jax
import orbax.checkpoint as ocp


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
    """Restores onto the shardings of ``abstract_state`` (a pytree of ShapeDtypeStruct)."""
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], _decode_iterator_state(restored["data"])

  def reached_preemption(self, step: int) -> bool:
    return self.manager.reached_preemption(step)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
