"""Process-0 metric sinks: ``metrics.jsonl`` (one JSON object per logged step) and TensorBoard."""

from __future__ import annotations

import json
import math
import os
from typing import Mapping

import jax
import numpy as np

from ssljax.train import workdir as workdir_lib


class MetricsWriter:
  """Writes scalars to ``workdir/metrics.jsonl`` and TensorBoard event files.

  Only process 0 writes; on other processes every call is a no-op.
  """

  def __init__(self, workdir: str, *, tensorboard: bool = True, keep_until_step: int | None = None):
    """Opens the sinks; ``keep_until_step``: drop earlier records of later steps first.

    A resumed run redoes the steps after its checkpoint, so the records an
    interrupted attempt logged past that step are removed (atomically) before
    they would be written a second time.
    """
    self.active = jax.process_index() == 0
    self._tb = None
    self._jsonl = None
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    if keep_until_step is not None and os.path.exists(path):
      _truncate_after(path, keep_until_step)
    self._jsonl = open(path, "a", encoding="utf-8")
    if tensorboard:
      from tensorboardX import SummaryWriter  # TF-free event files
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self.active:
      return
    clean = {k: _to_float(v) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({"step": int(step), **clean}, sort_keys=True) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in clean.items():
        if v is not None and math.isfinite(v):
          self._tb.add_scalar(k, v, int(step))
      self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def _to_float(v):
  v = float(np.asarray(v))
  return v if math.isfinite(v) else None  # JSON has no NaN/Inf; the run stops on them anyway


def _truncate_after(path: str, step: int) -> None:
  kept = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        if json.loads(line)["step"] <= step:
          kept.append(line if line.endswith("\n") else line + "\n")
      except (ValueError, KeyError):
        continue  # a line cut by a crash mid-write
  workdir_lib.write_atomic(path, "".join(kept))
