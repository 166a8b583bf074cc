"""Builds a local TFDS dataset once, even when several processes ask at the same time.

Used by the TF-free builders (`ssljax.data.fashion_mnist`,
`ssljax.data.tiny_imagenet`).
"""

from __future__ import annotations

import fcntl
import os
from typing import Any, Callable


def prepare_once(make_builder: Callable[[], Any], check_sources: Callable[[], Any]) -> Any:
  """Returns ``make_builder()`` prepared, building it offline first if needed.

  Processes sharing a TFDS data dir (pytest-xdist workers, two runs on one
  host) would otherwise build the same dataset at once and race on TFDS's final
  rename of its ``incomplete.*`` folder. An exclusive ``fcntl`` lock on
  ``<data dir>/.<name>.lock`` serialises the builds; a process that waited
  finds the dataset prepared and opens it with a fresh builder (a builder made
  before the data existed has no split info).

  Args:
    make_builder: makes the (local, ``array_record``) TFDS builder.
    check_sources: raises the helpful error when the raw files are missing;
      called before anything is created on disk.
  """
  builder = make_builder()
  if builder.is_prepared():
    return builder
  check_sources()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  root = os.fspath(builder.data_dir_root)
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, f".{builder.name}.lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file is closed.
    builder = make_builder()
    if not builder.is_prepared():
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder
