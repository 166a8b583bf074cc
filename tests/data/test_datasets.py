"""Tests of the dataset registry and the offline Fashion-MNIST TFDS builder."""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ssljax.data import datasets, fashion_mnist
from ssljax.data.idx import write_idx

ALL = ("fashion_mnist", "cifar10", "cifar100", "stl10", "imagenet2012", "imagenet100", "digits")


def make_tiny_idx(folder, n_train=12, n_test=5, seed=0, gz=True):
  """Writes the four Fashion-MNIST IDX files with random content; returns the arrays."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  out = {}
  for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (n,), dtype=np.uint8)
    ext = ".gz" if gz else ""
    write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"), images)
    write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"), labels)
    out[split] = (images[..., None], labels.astype(np.int32))
  return out


def test_registry_complete_and_consistent():
  assert set(ALL) <= set(datasets.dataset_names())
  for name in ALL:
    info = datasets.get_dataset_info(name)
    assert info.name == name
    h, w, c = info.image_shape
    assert c in (1, 3) and len(info.mean) == c and len(info.std) == c
    assert all(0 < m < 1 for m in info.mean) and all(0 < s < 1 for s in info.std)
    assert info.view_size <= min(h, w)
    assert info.num_train > 0 and info.num_eval > 0 and info.num_labeled > 0
    assert info.train_split and info.eval_split and info.labeled_split
  stl = datasets.get_dataset_info("stl10")
  assert stl.train_split == "train+unlabelled" and stl.labeled_split == "train"
  assert stl.num_train == 105000 and stl.num_eval == 8000
  assert datasets.get_dataset_info("ImageNet") is datasets.get_dataset_info("imagenet2012")
  assert datasets.get_dataset_info("imagenet100").num_classes == 100


@pytest.mark.parametrize("name,expected", [("cifar10", 10), ("cifar100", 100), ("stl10", 10),
                                           ("imagenet2012", 1000)])
def test_num_classes_match_tfds(tmp_path, name, expected):
  info = datasets.get_dataset_info(name)
  builder = tfds.builder(info.tfds_name, data_dir=str(tmp_path))
  assert builder.info.features["label"].num_classes == info.num_classes == expected


def test_unknown_dataset_lists_valid_names():
  with pytest.raises(ValueError, match="Unknown dataset 'mnist'") as e:
    datasets.get_dataset_info("mnist")
  for name in ALL:
    assert name in str(e.value)


def test_imagenet100_classes_and_label_map(tmp_path):
  wnids = datasets.class_subset_wnids("imagenet100")
  assert len(wnids) == 100 == len(set(wnids))
  assert wnids[:3] == ("n02869837", "n01749939", "n02488291")  # solo-learn's order.
  names = tfds.builder("imagenet2012", data_dir=str(tmp_path)).info.features["label"].names
  table = datasets.subset_label_map(names, "imagenet100")
  assert table.shape == (1000,) and table.dtype == np.int32
  kept = np.flatnonzero(table >= 0)
  assert len(kept) == 100
  np.testing.assert_array_equal(np.sort(table[kept]), np.arange(100))
  # New label = rank of the wnid among the 100 sorted wnids.
  for old in kept[:10]:
    assert table[old] == sorted(wnids).index(names[old])
  with pytest.raises(ValueError, match="not among the dataset's class names"):
    datasets.subset_label_map(["n0"] * 10, "imagenet100")


def test_prepare_instructions_mention_commands():
  msg = datasets.prepare_instructions(datasets.get_dataset_info("cifar10"), "/data/tfds")
  assert "pip install 'ssljax[tf]'" in msg
  assert "tfds build cifar10 --file_format=array_record --data_dir=/data/tfds" in msg
  assert "--config.data.data_dir" in msg
  msg = datasets.prepare_instructions(datasets.get_dataset_info("imagenet100"), "/d")
  assert "tfds build imagenet2012" in msg and "/d/downloads/manual" in msg


def test_fashion_builder_on_tiny_idx(tmp_path):
  """Two first builds at once into one data dir (as pytest-xdist workers do): one
  builds, the other waits on `local_build.prepare_once`'s lock and opens the result."""
  arrays = make_tiny_idx(tmp_path / "idx")
  data_dir = str(tmp_path / "tfds")
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    builders = list(pool.map(
        lambda _: fashion_mnist.prepare_fashion_mnist(data_dir, idx_dir=str(tmp_path / "idx")),
        range(2)))
  for builder in builders:
    assert builder.is_prepared() and builder.name == "fashion_mnist_idx"
    assert builder.info.splits["train"].num_examples == 12
    assert builder.info.splits["test"].num_examples == 5
    assert builder.info.features["label"].names[9] == "Ankle boot"
  for split, (images, labels) in arrays.items():
    src = tfds.data_source("fashion_mnist_idx", split=split, data_dir=data_dir, download=False)
    assert len(src) == len(labels)
    got = [src[i] for i in range(len(src))]
    assert all(g["image"].dtype == np.uint8 and g["image"].shape == (28, 28, 1) for g in got)
    # Record i is IDX row i (disable_shuffling).
    np.testing.assert_array_equal(np.stack([g["image"] for g in got]), images)
    np.testing.assert_array_equal([int(g["label"]) for g in got], labels)
  # Prepared: a second call is a no-op and does not need the IDX files any more.
  again = fashion_mnist.prepare_fashion_mnist(data_dir, idx_dir=str(tmp_path / "gone"))
  assert again.is_prepared()


def test_fashion_idx_uncompressed_and_env_var(tmp_path, monkeypatch):
  arrays = make_tiny_idx(tmp_path / "raw", gz=False, seed=3)
  monkeypatch.setenv(fashion_mnist.ENV_IDX_DIR, str(tmp_path / "raw"))
  assert fashion_mnist.default_idx_dir() == str(tmp_path / "raw")
  images, labels = fashion_mnist.read_fashion_mnist_idx("test")
  np.testing.assert_array_equal(images, arrays["test"][0])
  np.testing.assert_array_equal(labels, arrays["test"][1])
  assert labels.dtype == np.int32


def test_fashion_missing_files_message(tmp_path):
  os.makedirs(tmp_path / "empty")
  expected = ("sudo apt-get install dataset-fashion-mnist, or set SSLJAX_FASHION_MNIST_DIR to "
              "a folder with the four IDX files")
  with pytest.raises(FileNotFoundError, match=expected):
    fashion_mnist.idx_files(str(tmp_path / "empty"))
  with pytest.raises(FileNotFoundError, match=expected):
    fashion_mnist.prepare_fashion_mnist(str(tmp_path / "tfds"), idx_dir=str(tmp_path / "empty"))
  assert not os.path.exists(tmp_path / "tfds" / "fashion_mnist_idx" / "1.0.0")


def test_fashion_bad_labels(tmp_path):
  make_tiny_idx(tmp_path)
  write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2], np.uint8))
  with pytest.raises(ValueError, match="3 labels for 5 images"):
    fashion_mnist.read_fashion_mnist_idx("test", str(tmp_path))


def test_real_debian_fashion_mnist_files():
  """The real files (CI installs dataset-fashion-mnist). Fails, never skips, when missing."""
  folder = fashion_mnist.default_idx_dir()
  fashion_mnist.idx_files(folder)  # FileNotFoundError with the apt-get hint if absent.
  images, labels = fashion_mnist.read_fashion_mnist_idx("test", folder)
  assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels[:5], [9, 2, 1, 1, 6])
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), [1000] * 10)
  images, labels = fashion_mnist.read_fashion_mnist_idx("train", folder)
  assert images.shape == (60000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), [6000] * 10)
  info = datasets.get_dataset_info("fashion_mnist")
  x = images / 255.0
  assert abs(x.mean() - info.mean[0]) < 1e-4 and abs(x.std() - info.std[0]) < 1e-4


def test_digits_statistics_match_registry():
  from sklearn.datasets import load_digits
  x = np.round(load_digits().images * (255.0 / 16.0)).astype(np.uint8)[:1500] / 255.0
  info = datasets.get_dataset_info("digits")
  assert abs(x.mean() - info.mean[0]) < 1e-4 and abs(x.std() - info.std[0]) < 1e-4
