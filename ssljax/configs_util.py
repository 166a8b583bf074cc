"""Loading ``configs/**.py`` files outside the CLI (tests, notebooks, table scripts)."""

from __future__ import annotations

import glob
import importlib.util
import os

import ml_collections

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_files(root: str | None = None) -> list[str]:
  """All config files under ``configs/`` (relative paths, sorted)."""
  root = root or REPO_ROOT
  files = glob.glob(os.path.join(root, "configs", "**", "*.py"), recursive=True)
  return sorted(os.path.relpath(f, root) for f in files if not os.path.basename(f).startswith("_"))


def load_config(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config(arg)`` of the file at ``path`` (``'file.py:arg'`` also accepted)."""
  if ":" in path and arg is None:
    path, arg = path.split(":", 1)
  full = path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
  if not os.path.exists(full):
    raise FileNotFoundError(f"no config file {path!r}; available: {config_files()}")
  spec = importlib.util.spec_from_file_location(
      "ssljax_config_" + os.path.splitext(os.path.basename(full))[0], full)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()
