"""Tests of the offline Tiny-ImageNet builder on a tiny synthetic ``tiny-imagenet-200/`` folder.

The folder is written by the test with Pillow in the official layout (3
classes instead of 200, a few images each, JPEG and grayscale files included);
expected labels and record order are worked out here from the file names, not
from the module.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from ssljax.data import datasets, loader, tiny_imagenet

# Created in this (unsorted) order; labels are ranks in sorted order.
WNIDS = ("n03000000", "n01000000", "n02000000")
SORTED = sorted(WNIDS)


def _save(path, array, fmt):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, format=fmt)


def make_tiny_folder(root, *, n_train=3, seed=0, size=64):
  """Writes ``root/tiny-imagenet-200``; returns (folder, expected) with expected records.

  Training images are PNG bytes under a ``.JPEG`` name (lossless, so pixels are
  known exactly) except one real JPEG and one grayscale JPEG, whose expected
  pixels are PIL's decoding of the written file.
  """
  rng = np.random.default_rng(seed)
  folder = os.path.join(root, "tiny-imagenet-200")
  train = {}
  for w in WNIDS:
    for k in reversed(range(n_train)):  # Written out of order on purpose.
      path = os.path.join(folder, "train", w, "images", f"{w}_{k}.JPEG")
      img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
      if w == WNIDS[0] and k == 0:
        _save(path, img, "JPEG")
        img = np.asarray(Image.open(path).convert("RGB"))
      elif w == WNIDS[1] and k == 1:
        gray = rng.integers(0, 256, (size, size), dtype=np.uint8)
        _save(path, gray, "JPEG")
        img = np.repeat(np.asarray(Image.open(path))[..., None], 3, axis=-1)
      else:
        _save(path, img, "PNG")
      train[(w, f"{w}_{k}.JPEG")] = img
    with open(os.path.join(folder, "train", w, f"{w}_boxes.txt"), "w") as f:
      f.write("ignored\n")
  val_lines, val = [], []
  for i, w in enumerate([WNIDS[1], WNIDS[0], WNIDS[2], WNIDS[1]]):
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    _save(os.path.join(folder, "val", "images", f"val_{i}.JPEG"), img, "PNG")
    val_lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63\n")
    val.append((img, SORTED.index(w)))
  with open(os.path.join(folder, "val", "val_annotations.txt"), "w") as f:
    f.writelines(val_lines)
  _save(os.path.join(folder, "test", "images", "test_0.JPEG"),
        rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "PNG")
  with open(os.path.join(folder, "wnids.txt"), "w") as f:
    f.write("\n".join(WNIDS) + "\n")
  expected_train = [(train[(w, f"{w}_{k}.JPEG")], SORTED.index(w))
                    for w in SORTED for k in range(n_train)]
  return folder, {"train": expected_train, "validation": val}


def _check_split(data_dir, split, expected):
  src = tfds.data_source(tiny_imagenet.TFDS_NAME, split=split, data_dir=data_dir, download=False)
  assert len(src) == len(expected)
  for i, (img, label) in enumerate(expected):
    rec = src[i]
    assert rec["image"].dtype == np.uint8 and rec["image"].shape == (64, 64, 3)
    np.testing.assert_array_equal(rec["image"], img)
    assert int(rec["label"]) == label


def test_builder_on_tiny_folder(tmp_path):
  folder, expected = make_tiny_folder(str(tmp_path / "raw"))
  data_dir = str(tmp_path / "tfds")
  builder = tiny_imagenet.prepare_tiny_imagenet(data_dir, source_dir=folder)
  assert builder.is_prepared() and builder.name == "tiny_imagenet_folder"
  assert builder.info.splits["train"].num_examples == 9
  assert builder.info.splits["validation"].num_examples == 4
  assert "test" not in builder.info.splits
  for split, records in expected.items():
    _check_split(data_dir, split, records)
  # The label -> wnid table survives in the prepared metadata.
  restored = tfds.builder_from_directory(os.fspath(builder.data_dir))
  assert list(restored.info.metadata["wnids"]) == SORTED
  # Prepared: a second call is a no-op and does not need the folder any more.
  again = tiny_imagenet.prepare_tiny_imagenet(data_dir, source_dir=str(tmp_path / "gone"))
  assert again.is_prepared()


def test_folder_found_in_manual_dir_and_env_var(tmp_path, monkeypatch):
  monkeypatch.delenv(tiny_imagenet.ENV_SOURCE_DIR, raising=False)
  data_dir = str(tmp_path / "tfds")
  folder, _ = make_tiny_folder(os.path.join(data_dir, "downloads", "manual"), n_train=1)
  assert tiny_imagenet.find_source_dir(data_dir) == folder
  # The env var takes precedence over data_dir.
  other, _ = make_tiny_folder(str(tmp_path / "elsewhere"), n_train=1, seed=1)
  monkeypatch.setenv(tiny_imagenet.ENV_SOURCE_DIR, other)
  assert tiny_imagenet.find_source_dir(data_dir) == other


def test_missing_folder_message(tmp_path, monkeypatch):
  monkeypatch.delenv(tiny_imagenet.ENV_SOURCE_DIR, raising=False)
  data_dir = str(tmp_path / "tfds")
  with pytest.raises(FileNotFoundError) as e:
    tiny_imagenet.prepare_tiny_imagenet(data_dir)
  msg = str(e.value)
  assert os.path.join(data_dir, "downloads", "manual") in msg
  assert "tiny-imagenet-200.zip" in msg and tiny_imagenet.ENV_SOURCE_DIR in msg
  assert not os.path.exists(os.path.join(data_dir, tiny_imagenet.TFDS_NAME))  # Nothing half-built.


def test_bad_inputs_raise(tmp_path):
  folder, _ = make_tiny_folder(str(tmp_path / "raw"), n_train=1)
  _save(os.path.join(folder, "train", WNIDS[0], "images", "big.JPEG"),
        np.zeros((32, 48, 3), np.uint8), "PNG")
  with pytest.raises(ValueError, match="48x32, Tiny-ImageNet images are 64x64"):
    tiny_imagenet.load_image(os.path.join(folder, "train", WNIDS[0], "images", "big.JPEG"))
  with open(os.path.join(folder, "val", "val_annotations.txt"), "a") as f:
    f.write("val_9.JPEG\tn09999999\t0\t0\t1\t1\n")
  with pytest.raises(ValueError, match="'n09999999' has no folder under train/"):
    tiny_imagenet.split_files(folder, "validation")
  with pytest.raises(ValueError, match="use 'train' or 'validation'"):
    tiny_imagenet.split_files(folder, "test")


def test_registry_entry_and_local_builder_hook(tmp_path):
  info = datasets.get_dataset_info("tiny_imagenet")
  assert datasets.get_dataset_info("Tiny-ImageNet") is info
  assert (info.num_classes, info.image_shape, info.view_size) == (200, (64, 64, 3), 64)
  assert (info.num_train, info.num_eval) == (100000, 10000)
  assert (info.train_split, info.eval_split, info.labeled_split) == ("train", "validation", "train")
  assert info.tfds_name == tiny_imagenet.TFDS_NAME and not info.variable_size
  msg = datasets.prepare_instructions(info, "/data/tfds")
  assert "/data/tfds/downloads/manual" in msg and "python -m ssljax.data.tiny_imagenet" in msg
  assert datasets.register_local_builder(info.tfds_name)
  assert not datasets.register_local_builder("cifar10")
  assert not datasets.prepare_local_builder("cifar10", str(tmp_path))


def test_loader_builds_tiny_imagenet_on_first_use(tmp_path, monkeypatch):
  folder, expected = make_tiny_folder(str(tmp_path / "raw"), n_train=2)
  monkeypatch.setenv(tiny_imagenet.ENV_SOURCE_DIR, folder)
  data_dir = str(tmp_path / "tfds")
  loader.clear_cache()
  # No explicit prepare step: the loader converts the folder on first use.
  images, labels = loader.load_split_arrays("tiny_imagenet", "validation", data_dir=data_dir)
  np.testing.assert_array_equal(images, np.stack([im for im, _ in expected["validation"]]))
  np.testing.assert_array_equal(labels, [lab for _, lab in expected["validation"]])
  it = loader.make_train_loader("tiny_imagenet", global_batch_size=2, seed=0, data_dir=data_dir)
  batch = next(it)
  assert batch["image"].shape == (2, 64, 64, 3) and batch["image"].dtype == np.uint8
  loader.clear_cache()


def test_unprepared_dataset_error_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.delenv(tiny_imagenet.ENV_SOURCE_DIR, raising=False)
  data_dir = str(tmp_path / "tfds")
  # Through the loader (TFDS knows the builder because the registry lookup imports it).
  with pytest.raises(FileNotFoundError) as e:
    loader.open_data_source("tiny_imagenet", "train", data_dir=data_dir)
  assert os.path.join(data_dir, "downloads", "manual") in str(e.value)
  assert "tiny-imagenet-200.zip" in str(e.value)
  # With the folder in place the instructions name it and the conversion command.
  folder, _ = make_tiny_folder(os.path.join(data_dir, "downloads", "manual"), n_train=1)
  msg = datasets.prepare_instructions(datasets.get_dataset_info("tiny_imagenet"), data_dir)
  assert f"found at {folder}" in msg
  assert f"python -m ssljax.data.tiny_imagenet --data_dir={data_dir}" in msg
