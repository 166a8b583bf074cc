"""Tiny-ImageNet as a TF-free TFDS dataset built from the ``tiny-imagenet-200/`` folder.

Tiny-ImageNet (Stanford CS231n; 200 ImageNet classes, 64x64x3, 500 training
and 50 validation images per class) is not in the TFDS catalogue. This module
defines a small ``GeneratorBasedBuilder``, ``tiny_imagenet_folder``, that
decodes the JPEGs of the official zip with Pillow and writes ``array_record``
shards with a ``Tensor(uint8, (64, 64, 3))`` image feature (zlib-compressed),
so preparing and reading (``tfds.data_source``) need no TensorFlow, like
`ssljax.data.fashion_mnist`.

Expected layout (``tiny-imagenet-200.zip`` from cs231n.stanford.edu, unzipped)::

  tiny-imagenet-200/
    train/<wnid>/images/<wnid>_<k>.JPEG     500 per class
    val/images/val_<k>.JPEG                 10,000 images
    val/val_annotations.txt                 file <TAB> wnid <TAB> x0 y0 x1 y1
    test/images/...                         unlabelled: not used

Splits: ``'train'`` (100,000) and ``'validation'`` (10,000; the labelled set
every paper reports on). Labels: rank of the WordNet id among the sorted
training-folder names, which is the order of torchvision's ``ImageFolder``
used by W-MSE, solo-learn and CorInfoMax (``rearrange_folders_tiny.py``).
Record order (``disable_shuffling``): training images sorted by (wnid, file
name); validation images in ``val_annotations.txt`` order. The few grayscale
JPEGs of the official set are converted to RGB (``PIL.Image.convert('RGB')``,
as ``ImageFolder``'s default loader does).

Where the folder is looked for, in order: the ``source_dir`` argument, the
environment variable ``SSLJAX_TINY_IMAGENET_DIR``,
``<data_dir>/downloads/manual/tiny-imagenet-200`` (TFDS's manual-download
folder) and ``<data_dir>/tiny-imagenet-200``, where ``data_dir`` is the TFDS
data dir (``config.data.data_dir``; default ``$TFDS_DATA_DIR`` or
``~/tensorflow_datasets``). The raw folder is only read while preparing.

Example (needs the downloaded folder, so not a doctest)::

  builder = prepare_tiny_imagenet('/data/tfds')     # ~1 min once, then a no-op
  src = tfds.data_source('tiny_imagenet_folder', split='validation',
                         data_dir='/data/tfds', download=False)
  src[0]['image'].shape, src[0]['label']            # ((64, 64, 3), 107)

  or from a shell: ``python -m ssljax.data.tiny_imagenet --data_dir=/data/tfds``.
"""

from __future__ import annotations

import argparse
import os
from typing import Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds

from ssljax.data import local_build

TFDS_NAME = "tiny_imagenet_folder"
FOLDER_NAME = "tiny-imagenet-200"
ENV_SOURCE_DIR = "SSLJAX_TINY_IMAGENET_DIR"
NUM_CLASSES = 200
IMAGE_SHAPE = (64, 64, 3)
_IMAGE_EXTS = (".jpeg", ".jpg", ".png")

_CITATION = """@article{le2015tiny,
  title={Tiny ImageNet Visual Recognition Challenge},
  author={Le, Ya and Yang, Xuan},
  journal={CS 231N},
  year={2015}}"""


def _tfds_root(data_dir: Optional[str]) -> str:
  return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def candidate_source_dirs(data_dir: Optional[str] = None,
                          source_dir: Optional[str] = None) -> list[str]:
  """The folders searched for ``tiny-imagenet-200/``, in order (see the module docstring)."""
  if source_dir:
    return [source_dir]
  root = _tfds_root(data_dir)
  out = [os.environ[ENV_SOURCE_DIR]] if os.environ.get(ENV_SOURCE_DIR) else []
  return out + [os.path.join(root, "downloads", "manual", FOLDER_NAME), os.path.join(root, FOLDER_NAME)]


def missing_help(data_dir: Optional[str] = None) -> str:
  """Where to put the folder (used in error messages and `prepare_instructions`)."""
  root = _tfds_root(data_dir)
  return (f"download tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip), "
          f"unzip it into {os.path.join(root, 'downloads', 'manual')}/ so that "
          f"{os.path.join(root, 'downloads', 'manual', FOLDER_NAME, 'train')} exists (or set "
          f"{ENV_SOURCE_DIR} to the {FOLDER_NAME} folder); it is converted to array_record once, "
          f"e.g. with python -m ssljax.data.tiny_imagenet --data_dir={root}")


def prepare_help(data_dir: Optional[str] = None) -> str:
  """What to do before reading: convert the folder if it is there, else where to put it."""
  root = _tfds_root(data_dir)
  try:
    folder = find_source_dir(data_dir)
  except FileNotFoundError:
    return missing_help(data_dir)
  return (f"the {FOLDER_NAME} folder was found at {folder}; convert it to array_record once "
          f"with python -m ssljax.data.tiny_imagenet --data_dir={root}")


def find_source_dir(data_dir: Optional[str] = None, source_dir: Optional[str] = None) -> str:
  """The first candidate folder with ``train/`` and ``val/``.

  Raises:
    FileNotFoundError: none found; the message lists the folders searched and
      says where to put the data.
  """
  candidates = candidate_source_dirs(data_dir, source_dir)
  for folder in candidates:
    if os.path.isdir(os.path.join(folder, "train")) and os.path.isdir(os.path.join(folder, "val")):
      return folder
  raise FileNotFoundError(f"Tiny-ImageNet folder not found (looked for train/ and val/ in: "
                          f"{', '.join(candidates)}). To fix: {missing_help(data_dir)}.")


def _images_in(folder: str) -> list[str]:
  return sorted(f for f in os.listdir(folder) if f.lower().endswith(_IMAGE_EXTS))


def class_wnids(source_dir: str) -> tuple[str, ...]:
  """Sorted WordNet ids of the class folders under ``train/`` (label ``i`` is ``wnids[i]``)."""
  train = os.path.join(source_dir, "train")
  wnids = tuple(sorted(d for d in os.listdir(train) if os.path.isdir(os.path.join(train, d))))
  if not wnids:
    raise ValueError(f"{train}: no class folders (expected train/<wnid>/images/*.JPEG).")
  if len(wnids) > NUM_CLASSES:
    raise ValueError(f"{train}: {len(wnids)} class folders, Tiny-ImageNet has {NUM_CLASSES}.")
  return wnids


def split_files(source_dir: str, split: str) -> list[tuple[str, int]]:
  """``(image path, label)`` of every example of ``split``, in record order.

  Args:
    source_dir: the ``tiny-imagenet-200`` folder.
    split: ``'train'`` or ``'validation'``.

  Raises:
    ValueError: unknown split, a class folder without images, a malformed
      annotation line, or a validation class that has no training folder.
  """
  wnids = class_wnids(source_dir)
  label_of = {w: i for i, w in enumerate(wnids)}
  if split == "train":
    out = []
    for w in wnids:
      folder = os.path.join(source_dir, "train", w, "images")
      if not os.path.isdir(folder):  # Tolerate train/<wnid>/*.JPEG (ImageFolder-style copies).
        folder = os.path.join(source_dir, "train", w)
      files = _images_in(folder)
      if not files:
        raise ValueError(f"{folder}: no images for class {w}.")
      out += [(os.path.join(folder, f), label_of[w]) for f in files]
    return out
  if split == "validation":
    ann = os.path.join(source_dir, "val", "val_annotations.txt")
    if not os.path.isfile(ann):
      raise ValueError(f"{ann} is missing; it maps each val/images/ file to its class.")
    out = []
    with open(ann, encoding="utf-8") as f:
      for n, line in enumerate(f, 1):
        if not line.strip():
          continue
        parts = line.split("\t")
        if len(parts) < 2:
          raise ValueError(f"{ann}:{n}: expected 'file<TAB>wnid<TAB>...', got {line.strip()!r}.")
        name, w = parts[0].strip(), parts[1].strip()
        if w not in label_of:
          raise ValueError(f"{ann}:{n}: class {w!r} has no folder under train/.")
        out.append((os.path.join(source_dir, "val", "images", name), label_of[w]))
    return out
  raise ValueError(f"Unknown Tiny-ImageNet split {split!r}; use 'train' or 'validation'.")


def load_image(path: str) -> np.ndarray:
  """One image as ``uint8 [64, 64, 3]`` (grayscale / CMYK converted to RGB)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  with Image.open(path) as im:
    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
  if arr.shape != IMAGE_SHAPE:
    raise ValueError(f"{path}: image is {arr.shape[1]}x{arr.shape[0]}, Tiny-ImageNet images are "
                     f"64x64.")
  return arr


class TinyImagenetFolder(tfds.core.GeneratorBasedBuilder):
  """Tiny-ImageNet (64x64x3 uint8, 200 classes) read from the ``tiny-imagenet-200`` folder."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Decoded with Pillow; zlib Tensor image feature; sorted-wnid labels."}

  def __init__(self, *, source_dir: Optional[str] = None, **kwargs):
    """Args: source_dir: the ``tiny-imagenet-200`` folder (only read when preparing)."""
    self._source_dir = source_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    # Built directly, as in fashion_mnist.py (no package metadata files).
    return tfds.core.DatasetInfo(
        builder=self,
        description="Tiny-ImageNet (Stanford CS231n), decoded from the tiny-imagenet-200 folder "
                    "by ssljax. Label i is the i-th WordNet id in sorted order "
                    "(metadata['wnids']).",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=IMAGE_SHAPE, dtype=np.uint8,
                                          encoding=tfds.features.Encoding.ZLIB),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True,  # Record order is the documented file order.
        metadata=tfds.core.MetadataDict(),
        homepage="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    source = find_source_dir(os.fspath(self.data_dir_root), self._source_dir)
    self.info.metadata["wnids"] = list(class_wnids(source))
    return {split: self._generate_examples(source, split) for split in ("train", "validation")}

  def _generate_examples(self, source: str, split: str) -> Iterator[tuple[int, dict]]:
    for i, (path, label) in enumerate(split_files(source, split)):
      yield i, {"image": load_image(path), "label": label}


def prepare_tiny_imagenet(data_dir: Optional[str] = None, *,
                          source_dir: Optional[str] = None) -> TinyImagenetFolder:
  """Builds ``tiny_imagenet_folder`` into ``data_dir`` once (no-op when prepared).

  Args:
    data_dir: TFDS data dir (``config.data.data_dir``); ``None`` means TFDS's default.
    source_dir: the ``tiny-imagenet-200`` folder; ``None`` searches
      `candidate_source_dirs`.

  Returns:
    The prepared builder (``builder.as_data_source(split)`` reads it).

  Raises:
    FileNotFoundError: not prepared yet and the folder is missing (the message
      says where to put it).
  """
  return local_build.prepare_once(
      lambda: TinyImagenetFolder(data_dir=data_dir, source_dir=source_dir,
                                 file_format="array_record"),
      lambda: find_source_dir(data_dir, source_dir))


def main(argv: Optional[list[str]] = None) -> None:
  parser = argparse.ArgumentParser(description="Convert tiny-imagenet-200/ to TFDS array_record.")
  parser.add_argument("--data_dir", default=None, help="TFDS data dir (config.data.data_dir).")
  parser.add_argument("--source_dir", default=None, help="the tiny-imagenet-200 folder.")
  args = parser.parse_args(argv)
  builder = prepare_tiny_imagenet(args.data_dir, source_dir=args.source_dir)
  print(f"{TFDS_NAME} prepared in {builder.data_dir}: "
        f"{ {k: v.num_examples for k, v in builder.info.splits.items()} }")


if __name__ == "__main__":
  main()
