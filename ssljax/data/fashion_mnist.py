"""Fashion-MNIST as a TF-free TFDS dataset built from local IDX files.

TFDS's own ``fashion_mnist`` builder cannot be used offline here: it needs
TensorFlow (``tf.io.gfile`` and PNG encoding) and its registered checksums do
not match the gzip files re-compressed by Debian's ``dataset-fashion-mnist``
package (``docs/data.md``). This module defines a small
``GeneratorBasedBuilder``, ``fashion_mnist_idx``, that reads the four IDX files
with numpy and writes ``array_record`` shards with a ``Tensor(uint8)`` image
feature, so preparing and reading (``tfds.data_source``) need no TensorFlow.

The IDX directory is, in order: the ``idx_dir`` argument, the environment
variable ``SSLJAX_FASHION_MNIST_DIR``, Debian's ``/usr/share/datasets/fashion-mnist``.
The TFDS ``data_dir`` is TFDS's default (``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``) unless given.

Record ``i`` of a split is row ``i`` of the IDX file (``disable_shuffling``),
so ``load_split_arrays('fashion_mnist', 'test')`` equals ``read_idx`` order.

Example:
  >>> builder = prepare_fashion_mnist()          # ~15 s once, then a no-op
  >>> src = tfds.data_source('fashion_mnist_idx', split='train', download=False)
  >>> src[0]['image'].shape, src[0]['image'].dtype
  ((28, 28, 1), dtype('uint8'))
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds
from absl import logging as absl_logging

from ssljax.data import local_build
from ssljax.data.idx import read_idx

TFDS_NAME = "fashion_mnist_idx"
ENV_IDX_DIR = "SSLJAX_FASHION_MNIST_DIR"
DEBIAN_IDX_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist.

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
# TFDS split name -> IDX file prefix.
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_KINDS = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}

_CITATION = """@article{xiao2017fashion,
  title={Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms},
  author={Xiao, Han and Rasul, Kashif and Vollgraf, Roland},
  journal={arXiv preprint arXiv:1708.07747},
  year={2017}}"""

_MISSING_HELP = ("sudo apt-get install dataset-fashion-mnist, or set SSLJAX_FASHION_MNIST_DIR "
                 "to a folder with the four IDX files")


def default_idx_dir() -> str:
  """The IDX directory: ``$SSLJAX_FASHION_MNIST_DIR`` if set, else Debian's."""
  return os.environ.get(ENV_IDX_DIR) or DEBIAN_IDX_DIR


def idx_files(idx_dir: Optional[str] = None) -> dict[str, dict[str, str]]:
  """Locates the four IDX files (``.gz`` or uncompressed) in ``idx_dir``.

  Args:
    idx_dir: directory; ``None`` means `default_idx_dir()`.

  Returns:
    ``{'train': {'images': path, 'labels': path}, 'test': {...}}``.

  Raises:
    FileNotFoundError: if any file is missing; the message says how to get them.
  """
  idx_dir = idx_dir or default_idx_dir()
  found, missing = {}, []
  for split, prefix in _SPLIT_PREFIX.items():
    found[split] = {}
    for kind, suffix in _KINDS.items():
      base = os.path.join(idx_dir, f"{prefix}-{suffix}")
      path = next((p for p in (base + ".gz", base) if os.path.isfile(p)), None)
      if path is None:
        missing.append(os.path.basename(base) + "[.gz]")
      found[split][kind] = path
  if missing:
    raise FileNotFoundError(
        f"Fashion-MNIST IDX files not found in {idx_dir!r} (missing: {', '.join(missing)}). "
        f"{_MISSING_HELP}.")
  return found


def read_fashion_mnist_idx(split: str, idx_dir: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
  """Reads one split straight from the IDX files (no TFDS; ~0.3 s for train).

  Args:
    split: ``'train'`` or ``'test'``.
    idx_dir: directory; ``None`` means `default_idx_dir()`.

  Returns:
    ``images: uint8 [N, 28, 28, 1]``, ``labels: int32 [N]``.
  """
  if split not in _SPLIT_PREFIX:
    raise ValueError(f"Unknown Fashion-MNIST split {split!r}; use one of {list(_SPLIT_PREFIX)}.")
  paths = idx_files(idx_dir)[split]
  images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
  if images.ndim != 3 or images.dtype != np.uint8:
    raise ValueError(f"{paths['images']}: expected uint8 [N, H, W] images, got "
                     f"{images.dtype} {images.shape}.")
  if labels.shape != images.shape[:1]:
    raise ValueError(f"{paths['labels']}: {labels.shape[0] if labels.ndim else '?'} labels for "
                     f"{images.shape[0]} images.")
  if labels.size and int(labels.max()) >= len(CLASS_NAMES):
    raise ValueError(f"{paths['labels']}: label {int(labels.max())} is out of range "
                     f"[0, {len(CLASS_NAMES)}).")
  return images[..., None], labels.astype(np.int32)


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST (28x28x1 uint8, 10 classes) read from local IDX files."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Built from the IDX files with numpy; Tensor image feature."}

  def __init__(self, *, idx_dir: Optional[str] = None, **kwargs):
    """Args: idx_dir: the IDX folder (only read when preparing); others go to TFDS."""
    self._idx_dir = idx_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    # DatasetInfo is built directly: `dataset_info_from_configs` needs the
    # builder module to live in a package with TFDS metadata files.
    return tfds.core.DatasetInfo(
        builder=self,
        description="Fashion-MNIST (Zalando), read from local IDX files by ssljax.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True,  # Record i is IDX row i.
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        citation=_CITATION,
    )

  # TFDS prints "Downloading and preparing dataset Unknown size ..." and
  # "... Subsequent calls will reuse this data." on stdout; nothing is downloaded.
  def _log_download_bytes(self) -> None:
    pass

  def _log_download_done(self) -> None:
    pass

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    idx_files(self._idx_dir)  # Fail early, with the install hint.
    return {split: self._generate_examples(split) for split in _SPLIT_PREFIX}

  def _generate_examples(self, split: str):
    images, labels = read_fashion_mnist_idx(split, self._idx_dir)
    if images.shape[1:] != (28, 28, 1):
      raise ValueError(f"Fashion-MNIST images must be 28x28, got {images.shape[1:3]}.")
    for i in range(images.shape[0]):
      yield i, {"image": images[i], "label": int(labels[i])}


def prepare_fashion_mnist(data_dir: Optional[str] = None, *,
                          idx_dir: Optional[str] = None) -> FashionMnistIdx:
  """Builds ``fashion_mnist_idx`` into ``data_dir`` once (no-op when prepared).

  Args:
    data_dir: TFDS data dir; ``None`` means TFDS's default.
    idx_dir: IDX folder; ``None`` means `default_idx_dir()`.

  Returns:
    The prepared builder (``builder.as_data_source(split)`` reads it).

  Raises:
    FileNotFoundError: if not prepared yet and the IDX files are missing.
  """
  make = lambda: FashionMnistIdx(data_dir=data_dir, idx_dir=idx_dir, file_format="array_record")

  def check_and_announce():  # only when a build is needed
    idx_files(idx_dir)  # Raise the helpful error before TFDS creates folders.
    print(f"[ssljax] preparing Fashion-MNIST in {make().data_dir} (once, ~15 s)",
          file=sys.stderr, flush=True)

  with _quiet_tfds():
    return local_build.prepare_once(make, check_and_announce)


@contextlib.contextmanager
def _quiet_tfds():
  """No TFDS progress bars or warnings while the builder is checked and built (~15 s).

  TFDS's nested bars leave cursor-up codes in logs, and its "has no
  dataset_info.json" warnings describe the folder it has not written yet.
  """
  bars = getattr(tfds.core.utils.tqdm_utils, "_active", True)  # TFDS has no getter
  verbosity = absl_logging.get_verbosity()
  tfds.display_progress_bar(False)
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    yield
  finally:
    absl_logging.set_verbosity(verbosity)
    tfds.display_progress_bar(bars)
