"""Host-cropped ImageNet batches on tiny generated JPEG datasets, in both layouts.

Each layout holds the same JPEGs: a TFDS ``imagenet2012`` array_record dataset
and a ``train/<wnid>/`` + ``val/<wnid>/`` image folder (`ssljax.data.synthetic_jpegs`).
"""

from __future__ import annotations

import numpy as np
import pytest

from ssljax.data import crops, datasets, image_folder, loader, synthetic_jpegs

SIZE = 16
SUBSET = sorted(datasets.class_subset_wnids("imagenet100"))
OTHER = "n01440764"  # Not an ImageNet-100 class.
HOST_CROPS = (crops.HostCrop(SIZE), crops.HostCrop(SIZE))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
  """``{'tfds': loader kwargs, 'folder': loader kwargs}`` over the same 24 + 8 JPEGs."""
  root = tmp_path_factory.mktemp("imagenet")
  sizes = [(30, 40), (40, 30), (24, 48), (36, 36)]
  wnids = [SUBSET[3], SUBSET[50], OTHER]
  train = synthetic_jpegs.make_examples(24, wnids, seed=0, sizes=sizes)
  val = synthetic_jpegs.make_examples(8, wnids, seed=1, sizes=sizes)
  synthetic_jpegs.write_image_folder(str(root / "folder"), {"train": train, "val": val})
  for split in ("train", "val"):  # The other ImageNet-100 classes: present, without images.
    for w in SUBSET:
      (root / "folder" / split / w).mkdir(exist_ok=True)
  synthetic_jpegs.write_tfds_imagenet(str(root / "tfds"), {"train": train, "validation": val})
  return {"tfds": {"data_dir": str(root / "tfds")}, "folder": {"image_folder": str(root / "folder")}}


def _train(kw, **extra):
  args = dict(global_batch_size=4, seed=0, process_index=0, process_count=1, worker_count=0,
              host_crops=HOST_CROPS)
  args.update(extra)
  return loader.make_train_loader("imagenet2012", **kw, **args)


def _take(it, n):
  return [next(it) for _ in range(n)]


def _same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.parametrize("layout", ["tfds", "folder"])
def test_shapes_dtypes_and_views_differ(layouts, layout):
  b = next(_train(layouts[layout]))
  assert b["image"].shape == (4, 2, SIZE, SIZE, 3) and b["image"].dtype == np.uint8
  assert b["label"].dtype == np.int32 and b["index"].dtype == np.int32
  names = image_folder.imagenet2012_wnids()
  assert set(b["label"]) <= {names.index(w) for w in (SUBSET[3], SUBSET[50], OTHER)}
  for i in range(4):  # Two independent crops of the same image.
    assert not np.array_equal(b["image"][i, 0], b["image"][i, 1])


@pytest.mark.parametrize("layout", ["tfds", "folder"])
def test_deterministic_per_seed_and_process(layouts, layout):
  kw = layouts[layout]
  _same(_take(_train(kw, seed=3), 4), _take(_train(kw, seed=3), 4))
  assert not np.array_equal(next(_train(kw, seed=3))["image"], next(_train(kw, seed=4))["image"])
  seen = []
  for p in range(2):
    a = _take(_train(kw, seed=3, process_index=p, process_count=2, global_batch_size=4), 6)
    _same(a, _take(_train(kw, seed=3, process_index=p, process_count=2, global_batch_size=4), 6))
    idx = np.concatenate([x["index"] for x in a[:6]])  # 12 records per shard: 6 steps of 2.
    assert sorted(idx) == list(range(12 * p, 12 * (p + 1)))
    seen.append(set(idx))
  assert not seen[0] & seen[1]


@pytest.mark.parametrize("layout", ["tfds", "folder"])
def test_resume_mid_epoch_gives_the_same_batches(layouts, layout):
  kw = layouts[layout]
  it = _train(kw, seed=7)
  _take(it, 4)  # 6 steps per epoch: resume inside epoch 0, read across the boundary.
  state = it.get_state()
  expected = _take(it, 5)
  fresh = _train(kw, seed=7)
  fresh.set_state(state)
  _same(_take(fresh, 5), expected)
  # Epoch 1 re-crops the same records differently.
  a = _take(_train(kw, seed=7, num_epochs=2), 12)
  by_index = {}
  for x in a:
    for i, im in zip(x["index"], x["image"]):
      by_index.setdefault(int(i), []).append(im)
  assert all(len(v) == 2 and not np.array_equal(v[0], v[1]) for v in by_index.values())


@pytest.mark.slow
def test_worker_processes_resume_across_worker_counts(layouts):
  kw = layouts["folder"]
  expected = _take(_train(kw, seed=1), 5)
  it = _train(kw, seed=1, worker_count=2)
  try:
    _same(_take(it, 3), expected[:3])
    state = it.get_state()
  finally:
    it.close()
  fresh = _train(kw, seed=1, worker_count=0)
  fresh.set_state(state)
  _same(_take(fresh, 2), expected[3:])


def test_layouts_agree_on_records(layouts):
  """Same JPEG, same record index -> same crops; both layouts list every record once."""
  got = {}
  for layout in ("tfds", "folder"):
    src = loader.open_data_source("imagenet2012", "train", encoded=True, **layouts[layout])
    got[layout] = sorted((r["image"], r["label"]) for r in (src[i] for i in range(len(src))))
  assert got["tfds"] == got["folder"]


@pytest.mark.parametrize("layout", ["tfds", "folder"])
def test_eval_keeps_resize_256_centre_crop(layouts, layout):
  ev = loader.make_eval_loader("imagenet2012", global_batch_size=8, process_index=0,
                               process_count=1, **layouts[layout])
  b = next(ev)
  assert b["image"].shape == (8, 256, 256, 3) and b["mask"].all()


@pytest.mark.parametrize("layout", ["tfds", "folder"])
def test_imagenet100_subset(layouts, layout):
  src = loader.open_data_source("imagenet100", "train", encoded=True, **layouts[layout])
  assert len(src) == 16  # 2 of the 3 classes are in the subset.
  labels = sorted({src[i]["label"] for i in range(len(src))})
  assert labels == [3, 50]  # Rank among the sorted 100 wnids.
  b = next(loader.make_train_loader("imagenet100", global_batch_size=4, seed=0, process_index=0,
                                    process_count=1, worker_count=0, host_crops=HOST_CROPS,
                                    **layouts[layout]))
  assert b["image"].shape == (4, 2, SIZE, SIZE, 3) and set(b["label"]) <= {3, 50}


def test_folder_errors_name_what_is_missing(tmp_path, layouts):
  with pytest.raises(image_folder.ImageFolderNotFoundError, match=r"train is missing.*valprep"):
    loader.make_train_loader("imagenet2012", global_batch_size=4, seed=0, process_index=0,
                             process_count=1, image_folder=str(tmp_path))
  (tmp_path / "train" / OTHER).mkdir(parents=True)
  (tmp_path / "val").mkdir()
  with pytest.raises(image_folder.ImageFolderNotFoundError, match="100 imagenet100 classes"):
    loader.open_data_source("imagenet100", "validation", image_folder=str(tmp_path))
  (tmp_path / "val" / "stray").mkdir()
  with pytest.raises(image_folder.ImageFolderNotFoundError, match="not classes.*stray"):
    loader.open_data_source("imagenet2012", "validation", image_folder=str(tmp_path))


def test_host_crops_argument_errors(layouts):
  with pytest.raises(ValueError, match="variable-size JPEGs"):
    loader.make_train_loader("digits", global_batch_size=4, seed=0, process_index=0,
                             process_count=1, host_crops=HOST_CROPS)
  with pytest.raises(ValueError, match="one size"):
    _train(layouts["folder"], host_crops=(crops.HostCrop(16), crops.HostCrop(8)))


def test_auto_worker_count():
  assert loader.resolve_worker_count("auto", decodes_per_step=False) == 0
  assert loader.resolve_worker_count("auto", decodes_per_step=True) == max(
      1, loader.usable_cores() - 1)
  assert loader.resolve_worker_count(3, decodes_per_step=False) == 3
  with pytest.raises(ValueError, match="worker_count"):
    loader.resolve_worker_count(-1, decodes_per_step=True)
