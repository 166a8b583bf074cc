"""Tests of the TF-free grain loaders (digits, TFDS mock_data, tiny Fashion-MNIST builds)."""

from __future__ import annotations

import json
import os
from multiprocessing import shared_memory

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ssljax.data import datasets, fashion_mnist, loader
from ssljax.data.idx import write_idx


@pytest.fixture(autouse=True)
def _fresh_cache():
  # The in-memory split cache is keyed by (name, split, data_dir): different
  # mocks of the same name must not see each other's arrays.
  loader.clear_cache()
  yield
  loader.clear_cache()


def _ids(images: np.ndarray) -> list[bytes]:
  """Record identities: the image bytes (mock images are random, hence unique)."""
  return [im.tobytes() for im in images]


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_train_batches_shape_dtype_and_determinism():
  kw = dict(global_batch_size=64, process_index=0, process_count=1)
  a = _take(loader.make_train_loader("digits", seed=3, **kw), 5)
  b = _take(loader.make_train_loader("digits", seed=3, **kw), 5)
  c = _take(loader.make_train_loader("digits", seed=4, **kw), 5)
  assert a[0]["image"].shape == (64, 8, 8, 1) and a[0]["image"].dtype == np.uint8
  assert a[0]["label"].shape == (64,) and a[0]["label"].dtype == np.int32
  _assert_same_batches(a, b)
  assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_epochs_reshuffle_and_drop_remainder():
  it = loader.make_train_loader("digits", global_batch_size=100, seed=0, process_index=0,
                                process_count=1, num_epochs=2)
  assert it.steps_per_epoch == 15 and len(it) == 30  # 1500 // 100.
  batches = list(it)
  assert len(batches) == 30
  images, labels = loader.load_split_arrays("digits", "train")
  # Each epoch is a permutation of the split (1500 = 15 * 100: nothing dropped).
  for e in range(2):
    ep = np.concatenate([b["label"] for b in batches[15 * e:15 * (e + 1)]])
    np.testing.assert_array_equal(np.bincount(ep, minlength=10), np.bincount(labels, minlength=10))
  assert not np.array_equal(batches[0]["image"], batches[15]["image"])  # Reshuffled.


def test_process_shards_are_disjoint_and_cover_the_split():
  with tfds.testing.mock_data(num_examples=96):
    all_images, _ = loader.load_split_arrays("cifar10", "train")
    seen = []
    for p in range(3):
      it = loader.make_train_loader("cifar10", global_batch_size=12, seed=1, process_index=p,
                                    process_count=3, num_epochs=1)
      assert it.local_batch_size == 4 and len(it) == 8
      seen.append([i for b in it for i in _ids(b["image"])])
    for p in range(3):
      assert len(set(seen[p])) == 32  # No repeats within a process epoch.
      # Shard p is the contiguous block of records [32 p, 32 (p + 1)).
      assert set(seen[p]) == set(_ids(all_images[32 * p:32 * (p + 1)]))
    assert set().union(*map(set, seen)) == set(_ids(all_images))


def test_cached_and_uncached_paths_agree():
  with tfds.testing.mock_data(num_examples=40):
    kw = dict(global_batch_size=8, seed=5, process_index=1, process_count=2, num_epochs=2)
    a = list(loader.make_train_loader("cifar10", cache_in_memory=True, **kw))
    b = list(loader.make_train_loader("cifar10", cache_in_memory=False, **kw))
  assert len(a) == 10  # 20 records per shard: 5 batches of 4 per epoch, 2 epochs.
  _assert_same_batches(a, b)


def test_checkpoint_resume_reproduces_batches():
  kw = dict(global_batch_size=200, seed=7, process_index=0, process_count=1)
  it = loader.make_train_loader("digits", **kw)
  _take(it, 9)  # Past the first epoch boundary (7 steps per epoch).
  state = json.loads(json.dumps(it.get_state()))  # JSON-able (Orbax / grain handlers).
  expected = _take(it, 6)
  fresh = loader.make_train_loader("digits", **kw)
  fresh.set_state(state)
  _assert_same_batches(_take(fresh, 6), expected)
  # Rewind the same iterator too.
  it.set_state(state)
  _assert_same_batches(_take(it, 6), expected)


def test_set_state_rejects_other_configuration():
  state = loader.make_train_loader("digits", global_batch_size=64, seed=0, process_index=0,
                                   process_count=1).get_state()
  other = loader.make_train_loader("digits", global_batch_size=64, seed=1, process_index=0,
                                   process_count=1)
  with pytest.raises(ValueError, match="differently configured loader.*seed"):
    other.set_state(state)


def test_eval_loader_covers_split_once_in_order_with_mask():
  with tfds.testing.mock_data(num_examples=50):
    images, labels = loader.load_split_arrays("cifar10", "test")
    per_process = [list(loader.make_eval_loader("cifar10", "test", global_batch_size=16,
                                                process_index=p, process_count=2))
                   for p in range(2)]
  assert [len(x) for x in per_process] == [4, 4]  # ceil(50 / 16) steps on every process.
  got_im, got_lab, got_mask = [], [], []
  for step in range(4):
    for p in range(2):  # Global batch = process slices in process order.
      b = per_process[p][step]
      assert b["image"].shape == (8, 32, 32, 3) and b["mask"].dtype == bool
      got_im.append(b["image"]), got_lab.append(b["label"]), got_mask.append(b["mask"])
  got_im, got_lab, mask = map(np.concatenate, (got_im, got_lab, got_mask))
  np.testing.assert_array_equal(mask, np.arange(64) < 50)
  np.testing.assert_array_equal(got_im[:50], images)
  np.testing.assert_array_equal(got_lab[:50], labels)
  assert not got_im[50:].any() and not got_lab[50:].any()  # Zero padding.


def test_eval_loader_digits_default_split():
  ev = loader.make_eval_loader("digits", None, global_batch_size=100, process_index=0,
                               process_count=1)
  assert ev.split == "test" and len(ev) == 3
  masks = [b["mask"] for b in ev]
  assert sum(int(m.sum()) for m in masks) == 297


def test_batch_divisibility_and_argument_errors():
  with pytest.raises(ValueError, match="not divisible by process_count=3"):
    loader.make_train_loader("digits", global_batch_size=64, seed=0, process_index=0,
                             process_count=3)
  with pytest.raises(ValueError, match="not divisible by process_count=3"):
    loader.make_eval_loader("digits", "test", global_batch_size=64, process_index=0,
                            process_count=3)
  with pytest.raises(ValueError, match="process_index < process_count"):
    loader.make_train_loader("digits", global_batch_size=64, seed=0, process_index=2,
                             process_count=2)
  with pytest.raises(ValueError, match="fewer than one local batch"):
    loader.make_train_loader("digits", global_batch_size=2048, seed=0, process_index=0,
                             process_count=1)
  with pytest.raises(ValueError, match="cache_in_memory"):
    loader.make_train_loader("digits", global_batch_size=64, seed=0, process_index=0,
                             process_count=1, cache_in_memory="yes")


def test_unknown_dataset_error():
  with pytest.raises(ValueError, match="Unknown dataset 'svhn'.*cifar10"):
    loader.make_train_loader("svhn", global_batch_size=8, seed=0)


def test_missing_tfds_data_error(tmp_path):
  with pytest.raises(loader.DatasetNotPreparedError) as e:
    loader.make_train_loader("cifar10", global_batch_size=8, seed=0, data_dir=str(tmp_path),
                             process_index=0, process_count=1)
  msg = str(e.value)
  assert "not prepared" in msg and str(tmp_path) in msg
  assert f"tfds build cifar10 --file_format=array_record --data_dir={tmp_path}" in msg
  assert isinstance(e.value, FileNotFoundError)


def _tiny_fashion_idx(folder, n_train, n_test):
  rng = np.random.default_rng(11)
  os.makedirs(folder)
  out = {}
  for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
    im = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    lab = rng.integers(0, 10, (n,), dtype=np.uint8)
    write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), im)
    write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), lab)
    out[split] = (im[..., None], lab.astype(np.int32))
  return out


def test_fashion_mnist_builds_on_first_use(tmp_path, monkeypatch, capfd):
  arrays = _tiny_fashion_idx(tmp_path / "idx", 40, 9)
  monkeypatch.setenv(fashion_mnist.ENV_IDX_DIR, str(tmp_path / "idx"))
  data_dir = str(tmp_path / "tfds")
  images, labels = loader.load_split_arrays("fashion_mnist", "test", data_dir=data_dir)
  # One line for the build; no TFDS progress bars, banners or warnings.
  out, err = capfd.readouterr()
  assert out == "" and err == (f"[ssljax] preparing Fashion-MNIST in {data_dir}/"
                               "fashion_mnist_idx/1.0.0 (once, ~15 s)\n"), (out, err)
  np.testing.assert_array_equal(images, arrays["test"][0])
  np.testing.assert_array_equal(labels, arrays["test"][1])
  assert not images.flags.writeable  # Shared cache: read-only.
  it = loader.make_train_loader("fashion_mnist", global_batch_size=16, seed=0,
                                data_dir=data_dir, process_index=0, process_count=1,
                                num_epochs=1)
  batches = list(it)
  assert len(batches) == 2 and batches[0]["image"].shape == (16, 28, 28, 1)
  assert set(_ids(np.concatenate([b["image"] for b in batches]))) <= set(_ids(arrays["train"][0]))


def test_fashion_mnist_missing_idx_files(tmp_path, monkeypatch):
  monkeypatch.setenv(fashion_mnist.ENV_IDX_DIR, str(tmp_path / "nothing"))
  with pytest.raises(FileNotFoundError, match="sudo apt-get install dataset-fashion-mnist"):
    loader.load_split_arrays("fashion_mnist", "train", data_dir=str(tmp_path / "tfds"))


def test_stl10_unlabelled_split_through_source():
  with tfds.testing.mock_data(num_examples=12):
    it = loader.make_train_loader("stl10", global_batch_size=4, seed=0, process_index=0,
                                  process_count=1)
    assert it.split == "train+unlabelled"
    b = next(it)
  assert b["image"].shape == (4, 96, 96, 3) and b["image"].dtype == np.uint8


def test_imagenet_variable_size_images_are_resized_on_host():
  with tfds.testing.mock_data(num_examples=6):
    src = loader.open_data_source("imagenet2012", "validation")
    shapes = {src[i]["image"].shape for i in range(6)}
    b = next(loader.make_eval_loader("imagenet2012", None, global_batch_size=6,
                                     process_index=0, process_count=1))
  assert len(shapes) > 1  # The mock really has variable sizes.
  assert b["image"].shape == (6, 256, 256, 3) and b["mask"].all()


def test_resize_short_side_center_crop():
  # A 40x100 image whose columns encode their index: the center crop keeps the middle.
  img = np.tile(np.linspace(0, 255, 100).astype(np.uint8)[None, :, None], (40, 1, 3))
  out = loader.resize_short_side_center_crop(img, 20)
  assert out.shape == (20, 20, 3) and out.dtype == np.uint8
  # Short side 40 -> 20 halves the width to 50; the crop keeps columns 15..34 of 50,
  # i.e. original columns ~30..69: values around the middle of the ramp.
  assert abs(int(out[:, 10, 0].mean()) - 128) <= 6
  square = np.random.default_rng(0).integers(0, 256, (20, 20, 1), dtype=np.uint8)
  np.testing.assert_array_equal(loader.resize_short_side_center_crop(square, 20), square)


def test_imagenet100_subset_and_label_remap(tmp_path):
  names = tfds.builder("imagenet2012", data_dir=str(tmp_path)).info.features["label"].names
  table = datasets.subset_label_map(names, "imagenet100")
  in_subset = np.flatnonzero(table >= 0)
  out_subset = np.flatnonzero(table < 0)
  rng = np.random.default_rng(0)
  # 30 records, every third one in the subset; variable image sizes.
  orig = [int(in_subset[i % 100]) if i % 3 == 0 else int(out_subset[i]) for i in range(30)]
  records = [{"image": rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8), "label": lab,
              "file_name": f"{i}.JPEG"} for i, lab in enumerate(orig)]
  fake = lambda *args, **kwargs: list(records)  # Ignores decoders (SkipDecoding).
  with tfds.testing.mock_data(as_data_source_fn=fake):
    src = loader.open_data_source("imagenet100", "train")
    assert len(src) == 10
    got = [src[i] for i in range(10)]
    ev = list(loader.make_eval_loader("imagenet100", "train", global_batch_size=4,
                                      process_index=0, process_count=1))
  expected = [int(table[orig[i]]) for i in range(0, 30, 3)]
  assert [g["label"] for g in got] == expected
  assert all(0 <= e < 100 for e in expected)
  labels = np.concatenate([b["label"][b["mask"]] for b in ev])
  np.testing.assert_array_equal(labels, expected)
  assert ev[0]["image"].shape == (4, 256, 256, 3)


@pytest.mark.slow
def test_worker_processes_match_in_process_loading():
  """worker_count > 0 works outside absl.app.run (grain's absl-flags gotcha)."""
  kw = dict(global_batch_size=64, seed=2, process_index=0, process_count=1, num_epochs=1)
  expected = _take(loader.make_train_loader("digits", **kw), 3)
  it = loader.make_train_loader("digits", worker_count=1, **kw)
  try:
    _assert_same_batches(_take(it, 3), expected)
    state = it.get_state()
    nxt = next(it)
    it.set_state(state)
    _assert_same_batches([next(it)], [nxt])
    # Worker batches arrive in shared memory; their /dev/shm names are removed at once, so
    # a batch still alive when the process exits leaves nothing for the resource tracker.
    batch = next(it)
    names = [v.shm.name for v in batch.values() if getattr(v, "shm", None) is not None]
    assert names, "worker batches are expected in shared memory"
    for name in names:
      with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name)
    assert batch["image"].sum() > 0  # still readable
  finally:
    it.close()


def test_train_batches_carry_the_split_index_of_each_record():
  images, labels = loader.load_split_arrays("digits", "train")
  for p in range(2):
    for cache in (True, False):
      it = loader.make_train_loader("digits", global_batch_size=100, seed=3, process_index=p,
                                    process_count=2, cache_in_memory=cache)
      for _ in range(3):
        b = next(it)
        np.testing.assert_array_equal(b["image"], images[b["index"]])
        np.testing.assert_array_equal(b["label"], labels[b["index"]])
        assert np.all((b["index"] >= p * 750) & (b["index"] < (p + 1) * 750))
