"""ImageNet as a plain class-folder tree (torchvision ``ImageFolder`` layout), no TFDS.

Layout (the raw ILSVRC-2012 tree with the validation images moved into class
folders, as torchvision's and solo-learn's ImageNet pipelines expect)::

  <root>/train/<wnid>/*.JPEG      1,281,167 images, 1000 folders
  <root>/val/<wnid>/*.JPEG        50,000 images, 1000 folders

Labels: with ``class_names`` (the loader passes ImageNet-2012's 1000 sorted
WordNet ids, `imagenet2012_wnids`), the index of the folder's wnid in it, so
labels equal TFDS ``imagenet2012``'s and torchvision ``ImageFolder``'s on the
full tree, and a partial tree keeps them; without, the rank among the sorted
``train/`` folder names. With ``class_subset='imagenet100'`` only those 100
folders are read and relabelled 0..99 in sorted-wnid order
(`ssljax.data.datasets.class_subset_wnids`). Record order: files sorted by
(wnid, file name), so every process lists the same records.

Records are ``{'image': bytes, 'label': int}``: the encoded file, decoded by
the loader (`ssljax.data.crops`).

Example:
  >>> import tempfile, os
  >>> root = tempfile.mkdtemp()
  >>> for w in ('n01', 'n02'):
  ...   os.makedirs(os.path.join(root, 'train', w))
  ...   _ = open(os.path.join(root, 'train', w, 'a.JPEG'), 'wb').write(b'x')
  >>> src = ImageFolderSource(root, 'train')
  >>> len(src), src[1]['label'], src.class_names
  (2, 1, ('n01', 'n02'))
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from ssljax.data import datasets as datasets_lib

SPLIT_DIRS = {"train": "train", "validation": "val", "val": "val"}
IMAGE_EXTS = (".jpeg", ".jpg", ".png")
PREPARE_HINT = ("extract ILSVRC2012_img_train.tar into <root>/train/<wnid>/ (one tar per class) "
                "and move the validation images into <root>/val/<wnid>/ (e.g. with the "
                "valprep.sh script of the PyTorch ImageNet example)")


class ImageFolderNotFoundError(FileNotFoundError):
  """The class-folder tree is missing or incomplete (message says what and how to fix)."""


def imagenet2012_wnids() -> tuple[str, ...]:
  """The 1000 ImageNet-2012 WordNet ids in label order (TFDS's packaged ``labels.txt``)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  path = os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012", "labels.txt")
  with open(path, encoding="utf-8") as f:
    return tuple(line.strip() for line in f if line.strip())


def _class_dirs(folder: str) -> list[str]:
  return sorted(e.name for e in os.scandir(folder) if e.is_dir())


class ImageFolderSource:
  """Random access to ``{'image': bytes, 'label': int}`` records of a class-folder split.

  Args:
    root: folder holding ``train/`` and ``val/``.
    split: ``'train'``, ``'validation'`` (or ``'val'``).
    class_subset: ``None`` (every class folder) or a subset name (``'imagenet100'``).
    class_names: label order (label ``i`` is ``class_names[i]``); ``None``: the
      sorted ``train/`` folder names.

  Raises:
    ImageFolderNotFoundError: missing split folder, class folders or images.
  """

  def __init__(self, root: str, split: str, class_subset: Optional[str] = None,
               class_names: Optional[Sequence[str]] = None):
    if split not in SPLIT_DIRS:
      raise ValueError(f"Unknown split {split!r} for an image folder; use 'train' or "
                       f"'validation'.")
    root = os.path.expanduser(root)
    train_dir, folder = os.path.join(root, "train"), os.path.join(root, SPLIT_DIRS[split])
    for d in {train_dir, folder}:
      if not os.path.isdir(d):
        raise ImageFolderNotFoundError(f"ImageNet folder {d} is missing; to prepare it: "
                                       f"{PREPARE_HINT}.")
    present = _class_dirs(folder)
    if class_subset is not None:
      classes = sorted(datasets_lib.class_subset_wnids(class_subset))
      missing = [w for w in classes if w not in set(present)]
      if missing:
        raise ImageFolderNotFoundError(
            f"{len(missing)} of the {len(classes)} {class_subset} classes have no folder in "
            f"{folder} (e.g. {missing[:3]}); to prepare it: {PREPARE_HINT}.")
      self.class_names = tuple(classes)
    else:
      self.class_names = tuple(class_names) if class_names is not None else tuple(
          _class_dirs(train_dir))
      unknown = [w for w in present if w not in set(self.class_names)]
      if unknown:
        raise ImageFolderNotFoundError(
            f"{folder} has {len(unknown)} folders that are not classes (e.g. {unknown[:3]}): the "
            f"images must be in <wnid>/ folders of the training classes; to prepare it: "
            f"{PREPARE_HINT}.")
      classes = present
    label_of = {w: i for i, w in enumerate(self.class_names)}
    paths, labels = [], []
    for w in classes:
      d = os.path.join(folder, w)
      files = sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTS))
      paths += [os.path.join(d, f) for f in files]
      labels += [label_of[w]] * len(files)
    if not paths:
      raise ImageFolderNotFoundError(f"No images (*.JPEG) under {folder}/<wnid>/; to prepare "
                                     f"it: {PREPARE_HINT}.")
    self.root, self.split = root, split
    self.paths = paths
    self.labels = np.asarray(labels, np.int32)

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, i: int) -> dict[str, Any]:
    with open(self.paths[int(i)], "rb") as f:
      return {"image": f.read(), "label": int(self.labels[int(i)])}

  def __getitems__(self, idx: Sequence[int]) -> list[dict[str, Any]]:
    return [self[i] for i in idx]
