"""The run directory: an exclusive lock, atomic writes, and the resume check.

* `WorkdirLock`: one run per workdir. An ``fcntl`` lock on ``workdir/.lock``
  (holder host, pid and start time written inside): the kernel releases it
  when the holder dies, even by ``kill -9``, so a lock left by a crash is
  never stale; a second run refuses at once, naming the holder.
* `write_atomic`: write to a temporary file in the same directory, then
  ``os.replace`` — a reader (or a crash) never sees half a file.
* `check_resume`: compares the saved ``config.json`` with the new config
  before anything is written: fields that change what is trained refuse the
  resume with a diff; fields that are safe to change are accepted and listed.
* `check_loss_hparams`: compares the saved ``loss_hparams.json`` — every loss
  term's hyper-parameters with the kernels' defaults filled in — so a kernel
  default that changed since the run was saved (a field the config does not
  spell out) refuses the resume instead of silently training a mixed run.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import tempfile
from typing import Any

from ssljax import config as config_lib
from ssljax import errors

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
LOSS_HPARAMS_FILE = "loss_hparams.json"

# Top-level sections / fields whose change is safe on resume (bookkeeping,
# evaluation, the run's length). Everything else changes what is trained.
SAFE_ON_RESUME = ("log_every_steps", "eval", "checkpoint", "pid_monitor", "total_steps",
                  "num_epochs", "method", "data.data_dir", "data.worker_count",
                  "data.cache_in_memory", "distributed")


class WorkdirLock:
  """Exclusive lock on a workdir for the whole run (a context manager).

  Args:
    workdir: the run directory (created if missing).
    active: take the lock (process 0 of a multi-host run); other processes
      get a no-op lock.
    create: create a missing workdir (``False``: a missing one is not locked).
  Raises:
    errors.WorkdirError: the workdir is held by another run or is not a directory.
  """

  def __init__(self, workdir: str, *, active: bool = True, create: bool = True):
    self.workdir = workdir
    self.active = active
    self.create = create
    self._fd = None

  def __enter__(self):
    if not self.active:
      return self
    if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
      raise errors.WorkdirError(f"--workdir {self.workdir} exists and is not a directory. "
                                "Choose another --workdir.")
    if not self.create and not os.path.isdir(self.workdir):
      return self  # nothing to lock yet: nothing can hold it
    os.makedirs(self.workdir, exist_ok=True)
    path = os.path.join(self.workdir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_holder(fd)
      os.close(fd)
      raise errors.WorkdirError(
          f"--workdir {self.workdir} is in use by another run ({holder}). Wait for it to finish, "
          "stop it, or choose another --workdir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "started": _now()}).encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def __exit__(self, *exc):
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _read_holder(fd: int) -> str:
  try:
    info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    return f"pid {info['pid']} on {info['host']}, started {info['started']}"
  except (ValueError, KeyError, OSError):
    return "holder unknown"


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec="seconds")


def write_atomic(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through a temporary file and ``os.replace``."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path), suffix=".tmp")
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(d, dict):
    out = {}
    for k, v in d.items():
      out.update(_flatten(v, f"{prefix}{k}."))
    return out if out or not prefix else {prefix[:-1]: {}}
  return {prefix[:-1]: d}


def _is_safe(field: str) -> bool:
  return any(field == s or field.startswith(s + ".") for s in SAFE_ON_RESUME)


def added_at_default(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
  """Flat fields of ``new`` that ``old`` lacks and that sit at their `base_config` default.

  A field added to ssljax after a run was saved, left at its default, is the
  old behaviour (e.g. ``data.host_resize``): it does not make a different run.
  """
  defaults = _flatten(json.loads(config_lib.base_config().to_json_best_effort()))
  return {k for k in set(new) - set(old) if k in defaults and defaults[k] == new[k]}


def flatten(config_dict: dict[str, Any]) -> dict[str, Any]:
  """``{'a.b': value}`` of a nested config dict (as `check_resume` compares them)."""
  return _flatten(config_dict)


def _read_record(path: str) -> dict[str, Any] | None:
  """The flattened JSON run record at ``path``; ``None`` if there is none."""
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    try:
      return _flatten(json.load(f))
    except ValueError as e:
      raise errors.WorkdirError(f"{path} is not valid JSON ({e}); the run record is damaged. "
                                "Restore it or choose another --workdir.") from None


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, str]:
  """``{field: "field: old -> new"}`` of the flat fields that differ, sorted by field."""
  fields = [k for k in sorted(set(old) | set(new)) if old.get(k, "<unset>") != new.get(k, "<unset>")]
  return {k: f"{k}: {old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r}" for k in fields}


def check_resume(workdir: str, config_json: str) -> list[str]:
  """Compares a workdir's saved config with the new one, before anything is written.

  Args:
    workdir: the run directory.
    config_json: the new config as JSON (``config.to_json_best_effort()``).
  Returns:
    ``"field: old -> new"`` lines of the safe fields that changed, including
    fields the saved config lacks that sit at their `base_config` default
    (added to ssljax since; empty if nothing changed or the workdir holds no
    saved config).
  Raises:
    errors.WorkdirError: a field that changes what is trained differs; the
      message lists every such field with its old and new value.
  """
  old = _read_record(os.path.join(workdir, CONFIG_FILE))
  if old is None:
    return []
  new = _flatten(json.loads(config_json))
  lines = _changes(old, new)
  added = added_at_default(old, new)
  refused = [line for k, line in lines.items() if not _is_safe(k) and k not in added]
  if refused:
    raise errors.WorkdirError(
        f"--workdir {workdir} holds a run with a different config; resuming it would mix two "
        f"experiments. Changed: {'; '.join(refused)}. Use a new --workdir, or rerun with the "
        "saved config (see config.json there).")
  return list(lines.values())


def loss_hparams_json(terms) -> str:
  """The resolved loss hyper-parameters as JSON (what `check_loss_hparams` compares).

  Args:
    terms: ``{term name: (weight, hparams)}`` with every default filled in
      (``Objective.terms``).
  """
  record = {name: {"weight": weight, **hp} for name, (weight, hp) in terms.items()}
  return json.dumps(record, indent=2, sort_keys=True, default=repr)


def check_loss_hparams(workdir: str, hparams_json: str) -> bool:
  """Compares a workdir's saved resolved loss hyper-parameters with the new ones.

  The config records only the fields it sets; a kernel's default that changed
  between the run's start and its resume (e.g. an estimator's bandwidth) is
  caught here.

  Args:
    workdir: the run directory.
    hparams_json: `loss_hparams_json` of the new objective.
  Returns:
    ``True`` if the workdir holds a record (and it matches), ``False`` if it
    holds none (a run saved before ssljax wrote it: nothing to compare).
  Raises:
    errors.WorkdirError: a hyper-parameter differs; the message lists each
      with its old and new value.
  """
  old = _read_record(os.path.join(workdir, LOSS_HPARAMS_FILE))
  if old is None:
    return False
  changed = list(_changes(old, _flatten(json.loads(hparams_json))).values())
  if changed:
    raise errors.WorkdirError(
        f"--workdir {workdir} was trained with other loss hyper-parameters (a default changed in "
        f"ssljax since, or a different term): {'; '.join(changed)}. Use a new --workdir, or set "
        "the old values in config.loss.terms explicitly to resume.")
  return True
