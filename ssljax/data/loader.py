"""Host-side data loading: grain over ``tfds.data_source``, no TensorFlow.

The loaders yield fixed-shape ``uint8`` batches; all augmentation runs on the
device (`ssljax.data.augment`) inside the jitted step.

Train loader (`make_train_loader`)
  * Multi-host: the split is cut into ``process_count`` equal contiguous shards
    (``N // process_count`` records each, the remainder is dropped, like
    ``tfds.split_for_jax_process(..., drop_remainder=True)``; ``docs/distributed.md``).
    Process ``p`` only ever reads shard ``p`` and yields its
    ``global_batch_size // process_count`` rows of each global batch; stitch them
    with ``jax.make_array_from_process_local_data``.
  * Each epoch the shard is re-shuffled with a permutation seeded by
    ``(seed, process_index, epoch)``; the last incomplete batch of an epoch is
    dropped, so every process yields the same number of steps per epoch.
  * The iterator is a ``grain.DatasetIterator``: ``get_state()`` is a small
    JSON-able dict and ``set_state`` resumes with exactly the same batches
    (Orbax / grain checkpoint handlers accept it).
  * Each grain element is one whole batch, read with a single batched call
    (``__getitems__``). Per-record ArrayRecord reads are slow (~2k records/s on
    a 2-core VM against ~26k/s batched; environment.md §2), so small datasets
    (``cache_in_memory='auto'``: < 200k records of at most 64x64 pixels) are read
    into memory once and served from numpy.

Eval loader (`make_eval_loader`)
  Covers the split exactly once, in record order: global batch ``i`` holds
  records ``[i*B, (i+1)*B)``, process ``p`` gets its slice of it, and the last
  batch is padded (zeros) to full size with ``mask`` marking real rows.

Variable-size images (ImageNet), two host paths:

  * ``host_crops`` (train; one `ssljax.data.crops.HostCrop` per view): each view
    is a random resized crop sampled on the WHOLE image, decoded once per image
    at a reduced JPEG scale and resized to the view size on the host
    (`ssljax.data.crops`); batches are ``uint8 [L, V, S, S, 3]`` and
    `ssljax.data.augment.augment_views` skips its crop for them. The crop
    randomness of record ``i`` in epoch ``e`` comes from
    ``default_rng([seed, CROP_STREAM, e, i])``: independent of workers,
    threads and resumption.
  * otherwise (eval, and train without ``host_crops``): the short side is
    resized to the dataset's host size (256, bicubic with PIL's antialiasing,
    aspect preserved) and the image center-cropped to 256x256; the eval view
    is its centre 224 crop (resize 256, crop 224).

ImageNet is read from TFDS ``imagenet2012`` (array_record) or, with
``image_folder=<root>``, from the raw class-folder tree
(`ssljax.data.image_folder`); ImageNet-100 works on both.

Throughput: ``worker_count='auto'`` starts grain worker processes (usable
cores - 1) for datasets decoded per step (ImageNet) and none for in-memory
ones. Iterator state is the number of batches consumed (plus the loader's
identity), so a run resumes exactly, with any worker count.

Example:
  >>> it = make_train_loader('fashion_mnist', global_batch_size=256, seed=0)
  >>> batch = next(it)                 # {'image': uint8 [256,28,28,1], 'label': int32 [256]}
  >>> state = it.get_state()           # checkpoint with the model
  >>> it.set_state(state)              # ... later: same batches again
"""

from __future__ import annotations

import functools
import math
import os
import threading
from multiprocessing import shared_memory
from typing import Any, Optional, Sequence, Union

import grain
import numpy as np

from ssljax.data import crops as crops_lib
from ssljax.data import datasets as datasets_lib
from ssljax.data import image_folder as image_folder_lib
from ssljax.data.crops import HostCrop
from ssljax.data.datasets import DatasetInfo, get_dataset_info

# `cache_in_memory='auto'` thresholds.
AUTO_CACHE_MAX_RECORDS = 200_000
AUTO_CACHE_MAX_PIXELS = 64 * 64
_READ_CHUNK = 4096  # Records per batched read when filling the cache.
CROP_STREAM = 0x43524F50  # Tags the host-crop RNG streams ("CROP").


class DatasetNotPreparedError(FileNotFoundError):
  """The dataset's TFDS files are not in the data dir (message says how to fix)."""


# ----------------------------------------------------------------------------
# Sources: random access to dict records {'image': uint8 [h, w, c], 'label': int}.
# ----------------------------------------------------------------------------


class ArraySource:
  """A random-access source over in-memory arrays (``digits``, caches, tests).

  Args:
    images: ``uint8 [N, H, W, C]``.
    labels: ``int [N]``.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    if images.shape[0] != labels.shape[0]:
      raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels.")
    self.images, self.labels = images, labels

  def __len__(self) -> int:
    return int(self.images.shape[0])

  def __getitem__(self, i: int) -> dict[str, Any]:
    return {"image": self.images[i], "label": int(self.labels[i])}

  def __getitems__(self, idx: Sequence[int]) -> list[dict[str, Any]]:
    return [self[i] for i in idx]


class _SubsetSource:
  """Records ``indices`` of ``source`` with labels remapped through ``label_map``."""

  def __init__(self, source, indices: np.ndarray, label_map: np.ndarray):
    self._source, self._indices, self._label_map = source, indices, label_map

  def __len__(self) -> int:
    return int(self._indices.shape[0])

  def _remap(self, record: dict[str, Any]) -> dict[str, Any]:
    record = dict(record)
    record["label"] = int(self._label_map[int(record["label"])])
    return record

  def __getitem__(self, i: int) -> dict[str, Any]:
    return self._remap(self._source[int(self._indices[i])])

  def __getitems__(self, idx: Sequence[int]) -> list[dict[str, Any]]:
    return [self._remap(r) for r in _read_records(self._source, [int(self._indices[i]) for i in idx])]


def _read_records(source, indices: Sequence[int]) -> list[dict[str, Any]]:
  """One batched read (``__getitems__``), falling back to per-record reads.

  The fallback exists because ``tfds.testing.mock_data`` (tfds 4.9.10) installs
  an unbound ``__getitems__`` on its mock that raises ``TypeError``.
  """
  indices = [int(i) for i in indices]
  if not indices:
    return []
  getitems = getattr(source, "__getitems__", None)
  if getitems is not None:
    try:
      return list(getitems(indices))
    except TypeError:
      pass
  return [source[i] for i in indices]


def _tfds_data_source(info: DatasetInfo, split: str, data_dir: Optional[str], **kwargs):
  """``tfds.data_source`` without downloads; a clear error if not prepared."""
  import tensorflow_datasets as tfds  # Heavy import: only when TFDS data is used.

  datasets_lib.register_local_builder(info.tfds_name)  # ssljax's own TFDS builders
  # Those (Fashion-MNIST from the Debian IDX files, Tiny-ImageNet from its
  # folder) are built offline on first use, before TFDS looks into the data dir
  # (a no-op once built); FileNotFoundError says where the raw files go.
  local = datasets_lib.prepare_local_builder(info.tfds_name, data_dir)
  try:
    return tfds.data_source(info.tfds_name, split=split, data_dir=data_dir, download=False,
                            **kwargs)
  except Exception as e:  # pylint: disable=broad-except
    first_error = e
  # Work out whether the data is missing or something else went wrong.
  builder = tfds.builder(info.tfds_name, data_dir=data_dir)
  if local or builder.is_prepared():
    raise first_error
  raise DatasetNotPreparedError(
      f"Dataset {info.name!r} (TFDS {info.tfds_name!r}, split {split!r}) is not prepared in "
      f"{builder.data_dir}. {datasets_lib.prepare_instructions(info, data_dir)}") from first_error


@functools.lru_cache(maxsize=4)
def _digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top

  d = load_digits()
  images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  labels = d.target.astype(np.int32)
  n = get_dataset_info("digits").num_train
  sl = {"train": slice(0, n), "test": slice(n, None)}
  name, part = datasets_lib.split_slice(split)
  if name not in sl:
    raise ValueError(f"Unknown split {split!r} for 'digits'; use 'train' or 'test' (optionally "
                     "sliced, e.g. 'train[:1200]').")
  images, labels = images[sl[name]][part], labels[sl[name]][part]
  images.flags.writeable = labels.flags.writeable = False
  return images, labels


def _subset_indices(info: DatasetInfo, split: str, data_dir: Optional[str],
                    label_map: np.ndarray) -> np.ndarray:
  """Record indices of ``split`` whose label is in the subset (cached on disk).

  Scanning labels touches every record once (skipping JPEG decoding; ~1 min for
  ImageNet train). The result is saved next to the prepared TFDS files when
  that folder is writable, keyed by split and record count, and a sample of
  it is re-checked against the data on load.
  """
  import os  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  scan = _tfds_data_source(info, split, data_dir,
                           decoders={"image": tfds.decode.SkipDecoding()})
  n = len(scan)

  def labels_of(idx) -> np.ndarray:
    return np.array([int(r["label"]) for r in _read_records(scan, idx)], np.int64)

  cache_file = None
  try:
    version_dir = os.fspath(tfds.builder(info.tfds_name, data_dir=data_dir).data_dir)
    if os.path.isfile(os.path.join(version_dir, "dataset_info.json")):  # Really prepared.
      tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", split)
      cache_file = os.path.join(version_dir, f"ssljax_{info.class_subset}_{tag}_{n}.npy")
  except Exception:  # pylint: disable=broad-except
    cache_file = None
  if cache_file and os.path.isfile(cache_file):
    indices = np.load(cache_file)
    probe = indices[np.linspace(0, len(indices) - 1, min(len(indices), 32)).astype(int)]
    if len(indices) and indices.max() < n and (label_map[labels_of(probe)] >= 0).all():
      return indices
  keep = []
  for start in range(0, n, _READ_CHUNK):
    idx = np.arange(start, min(start + _READ_CHUNK, n))
    keep.append(idx[label_map[labels_of(idx)] >= 0])
  indices = np.concatenate(keep) if keep else np.zeros([0], np.int64)
  if cache_file:
    try:
      tmp = cache_file + f".tmp{os.getpid()}.npy"
      np.save(tmp, indices)
      os.replace(tmp, cache_file)
    except OSError:
      pass  # Read-only data dir: recompute next time.
  return indices


def open_data_source(name: Union[str, DatasetInfo], split: Optional[str] = None, *,
                     data_dir: Optional[str] = None, image_folder: Optional[str] = None,
                     encoded: bool = False):
  """Random-access source of ``{'image', 'label'}`` records of a split.

  Args:
    name: dataset name (see `ssljax.data.datasets`) or its `DatasetInfo`.
    split: TFDS split string; ``None`` means ``info.train_split``.
    data_dir: TFDS data dir; ``None`` means TFDS's default.
    image_folder: root of an ImageNet class-folder tree (``train/<wnid>/``,
      ``val/<wnid>/``) read instead of TFDS; ImageNet datasets only.
    encoded: records carry the encoded file (``bytes``) instead of the
      decoded image (always the case for ``image_folder``).

  Returns:
    An object with ``__len__``, ``__getitem__`` and ``__getitems__``. Images are
    as stored (variable-size for ImageNet); labels are already remapped for
    class subsets.

  Raises:
    DatasetNotPreparedError: if the TFDS files are missing.
    ImageFolderNotFoundError: if the class-folder tree is missing or incomplete.
  """
  info = name if isinstance(name, DatasetInfo) else get_dataset_info(name)
  split = split or info.train_split
  if image_folder is not None:
    if not info.variable_size:
      raise ValueError(f"image_folder is for ImageNet datasets, not {info.name!r}.")
    names = image_folder_lib.imagenet2012_wnids() if info.class_subset is None else None
    return image_folder_lib.ImageFolderSource(image_folder, split, info.class_subset, names)
  if info.tfds_name is None:
    return ArraySource(*_digits_split(split))
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  kwargs = {"decoders": {"image": tfds.decode.SkipDecoding()}} if encoded else {}
  if info.class_subset is None:
    return _tfds_data_source(info, split, data_dir, **kwargs)
  source = _tfds_data_source(info, split, data_dir, **kwargs)
  names = tfds.builder(info.tfds_name, data_dir=data_dir).info.features["label"].names
  label_map = datasets_lib.subset_label_map(names, info.class_subset)
  return _SubsetSource(source, _subset_indices(info, split, data_dir, label_map), label_map)


# ----------------------------------------------------------------------------
# Records -> fixed-shape uint8 arrays.
# ----------------------------------------------------------------------------


def resize_short_side_center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Aspect-preserving resize of the short side to ``size``, then center crop.

  Args:
    image: ``uint8 [h, w, c]`` (c = 1 or 3) or ``[h, w]``.
    size: output side.

  Returns:
    ``uint8 [size, size, c]`` (bicubic; PIL antialiases when downscaling).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  h, w, c = image.shape
  scale = size / min(h, w)
  nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
  if (nh, nw) != (h, w):
    pil = Image.fromarray(image[..., 0] if c == 1 else image)
    image = np.asarray(pil.resize((nw, nh), Image.BICUBIC))
    if image.ndim == 2:
      image = image[..., None]
  top, left = (nh - size) // 2, (nw - size) // 2
  return np.ascontiguousarray(image[top:top + size, left:left + size])


def _records_to_arrays(records: Sequence[dict[str, Any]], info: DatasetInfo,
                       out_images: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
  """Stacks records into ``uint8 [n, H, W, C]`` images and ``int32 [n]`` labels."""
  n = len(records)
  h, w, c = info.image_shape
  images = out_images if out_images is not None else np.empty((n, h, w, c), np.uint8)
  labels = np.empty((n,), np.int32)
  for i, r in enumerate(records):
    if isinstance(r["image"], bytes):  # Encoded (image folder): decode + resize + crop.
      images[i] = crops_lib.decode_resize_center_crop(r["image"], h)
      labels[i] = int(r["label"])
      continue
    img = np.asarray(r["image"])
    if img.ndim == 2:
      img = img[..., None]
    if info.variable_size and img.shape != info.image_shape:
      img = resize_short_side_center_crop(img, h)
    if img.shape != info.image_shape:
      raise ValueError(f"{info.name}: record image has shape {img.shape}, expected "
                       f"{info.image_shape}.")
    images[i] = img
    labels[i] = int(r["label"])
  return images, labels


def _should_cache(cache_in_memory: Union[bool, str], info: DatasetInfo, num_records: int) -> bool:
  if cache_in_memory == "auto":
    h, w, _ = info.image_shape
    return (not info.variable_size and num_records < AUTO_CACHE_MAX_RECORDS
            and h * w <= AUTO_CACHE_MAX_PIXELS)
  if isinstance(cache_in_memory, bool):
    return cache_in_memory
  raise ValueError(f"cache_in_memory must be True, False or 'auto', got {cache_in_memory!r}.")


@functools.lru_cache(maxsize=8)
def _cached_range(name: str, split: str, data_dir: Optional[str], start: int,
                  stop: int) -> tuple[np.ndarray, np.ndarray]:
  """Records ``[start, stop)`` of a split as read-only arrays (kept in memory)."""
  info = get_dataset_info(name)
  if info.tfds_name is None:
    images, labels = _digits_split(split)
    return images[start:stop], labels[start:stop]
  source = open_data_source(info, split, data_dir=data_dir)
  images = np.empty((stop - start, *info.image_shape), np.uint8)
  labels = np.empty((stop - start,), np.int32)
  for s in range(start, stop, _READ_CHUNK):
    e = min(s + _READ_CHUNK, stop)
    _, labels[s - start:e - start] = _records_to_arrays(
        _read_records(source, range(s, e)), info, out_images=images[s - start:e - start])
  # Shared between loaders of the same process: never mutate in place.
  images.flags.writeable = labels.flags.writeable = False
  return images, labels


def load_split_arrays(name: str, split: Optional[str] = None,
                      data_dir: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
  """A whole split in memory (for small datasets; cached per process).

  Args:
    name: dataset name.
    split: split string; ``None`` means ``info.train_split``.
    data_dir: TFDS data dir; ``None`` means TFDS's default.

  Returns:
    ``images: uint8 [N, H, W, C]`` and ``labels: int32 [N]``, both read-only
    (they are shared with the loaders; copy before modifying).
  """
  info = get_dataset_info(name)
  split = split or info.train_split
  n = len(open_data_source(info, split, data_dir=data_dir))
  return _cached_range(info.name, split, data_dir, 0, n)


def clear_cache() -> None:
  """Drops the in-memory split caches."""
  _cached_range.cache_clear()
  _digits_split.cache_clear()


# ----------------------------------------------------------------------------
# Batch functions (picklable: grain's multiprocessing sends them to workers).
# ----------------------------------------------------------------------------


class _Reader:
  """Reads records by index from memory or from the source."""

  def __init__(self, info: DatasetInfo, *, arrays=None, source=None, offset: int = 0):
    self.info, self.arrays, self.source, self.offset = info, arrays, source, offset

  def read(self, idx: np.ndarray, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``idx`` are indices relative to ``offset`` (the start of the cached range)."""
    del epoch  # Deterministic transform.
    if self.arrays is not None:
      images, labels = self.arrays
      return images[idx], labels[idx]
    return _records_to_arrays(_read_records(self.source, idx + self.offset), self.info)


class _CropReader:
  """Reads encoded records and cuts their host-side views: ``uint8 [n, V, S, S, 3]``."""

  def __init__(self, info: DatasetInfo, *, source, crops: Sequence[HostCrop], seed: int):
    self.info, self.source, self.crops, self.seed = info, source, tuple(crops), seed
    self.offset = 0

  def read(self, idx: np.ndarray, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    records = _read_records(self.source, idx)
    s = self.crops[0].size
    images = np.empty((len(records), len(self.crops), s, s, 3), np.uint8)
    labels = np.empty((len(records),), np.int32)
    for n, (i, r) in enumerate(zip(idx, records)):
      data = r["image"]
      if not isinstance(data, bytes):
        raise TypeError(f"{self.info.name}: host crops need encoded records, got "
                        f"{type(data).__name__}.")
      rng = np.random.default_rng([self.seed, CROP_STREAM, int(epoch), int(i)])
      images[n] = crops_lib.decode_random_crops(data, self.crops, rng)
      labels[n] = int(r["label"])
    return images, labels


class _TrainBatch:
  """Global step index -> the local batch of this process."""

  def __init__(self, reader: _Reader, *, shard_start: int, shard_size: int, local_batch: int,
               steps_per_epoch: int, seed: int, process_index: int):
    self.reader = reader
    self.shard_start, self.shard_size = shard_start, shard_size
    self.local_batch, self.steps_per_epoch = local_batch, steps_per_epoch
    self.seed, self.process_index = seed, process_index
    self._perms: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_perms"], state["_lock"] = {}, None
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def permutation(self, epoch: int) -> np.ndarray:
    """The shard order of ``epoch`` (deterministic in seed, process, epoch)."""
    with self._lock:
      perm = self._perms.get(epoch)
      if perm is None:
        rng = np.random.default_rng([self.seed, self.process_index, epoch])
        perm = rng.permutation(self.shard_size)
        self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
        self._perms[epoch] = perm
      return perm

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    epoch, step = divmod(int(index), self.steps_per_epoch)
    rows = self.permutation(epoch)[step * self.local_batch:(step + 1) * self.local_batch]
    images, labels = self.reader.read(rows + self.shard_start, epoch)
    # `index` (position in the split) lets the loop attach per-example state,
    # e.g. PID-SSL's pseudo-labels.
    index = rows + self.shard_start + self.reader.offset
    return {"image": images, "label": labels, "index": index.astype(np.int32)}


class _EvalBatch:
  """Step index -> this process's padded slice of global batch ``index``."""

  def __init__(self, reader: _Reader, *, num_records: int, global_batch: int, local_batch: int,
               process_index: int):
    self.reader, self.num_records = reader, num_records
    self.global_batch, self.local_batch = global_batch, local_batch
    self.process_index = process_index

  def __call__(self, index: int) -> dict[str, np.ndarray]:
    start = int(index) * self.global_batch + self.process_index * self.local_batch
    pos = start + np.arange(self.local_batch)
    mask = pos < self.num_records
    h, w, c = self.reader.info.image_shape
    images = np.zeros((self.local_batch, h, w, c), np.uint8)
    labels = np.zeros((self.local_batch,), np.int32)
    if mask.any():
      images[mask], labels[mask] = self.reader.read(pos[mask])
    return {"image": images, "label": labels, "mask": mask}


# ----------------------------------------------------------------------------
# The iterator.
# ----------------------------------------------------------------------------


class LoaderIterator(grain.DatasetIterator):
  """A checkpointable batch iterator (a ``grain.DatasetIterator``).

  Batch ``k`` is a pure function of the loader's configuration and ``k``, so
  the state is just the number of batches consumed: `set_state` restarts the
  grain pipeline (threads or worker processes) at that batch, whatever the
  worker count of the run that saved it.

  Attributes:
    info: the `DatasetInfo`.
    split: the split read.
    local_batch_size: rows per yielded batch (``global_batch_size // process_count``).
    steps_per_epoch: batches per epoch (train) or in total (eval).
    num_steps: total batches, ``None`` if infinite.
    worker_count: grain worker processes in use (0: threads of this process).
  """

  def __init__(self, batch_fn, *, meta: dict[str, Any], info: DatasetInfo, split: str,
               local_batch_size: int, steps_per_epoch: int, num_steps: Optional[int],
               worker_count: int, num_threads: int, prefetch_batches: int):
    super().__init__()
    if worker_count < 0 or num_threads < 0 or prefetch_batches < 0:
      raise ValueError("worker_count, num_threads and prefetch_batches must be >= 0.")
    self._batch_fn, self._meta = batch_fn, meta
    self.info, self.split = info, split
    self.local_batch_size, self.steps_per_epoch, self.num_steps = (
        local_batch_size, steps_per_epoch, num_steps)
    self.worker_count, self._num_threads, self._prefetch = (
        worker_count, num_threads, prefetch_batches)
    self._position = 0
    self._pipeline: Optional[grain.DatasetIterator] = None  # Started on first next().

  def _start(self) -> grain.DatasetIterator:
    stop = self.num_steps if self.num_steps is not None else 2**62
    ds = grain.MapDataset.range(self._position, stop).map(self._batch_fn)
    # One element is a whole batch: keep the buffer small (grain's default is 500).
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._num_threads,
                                                 prefetch_buffer_size=self._prefetch))
    if self.worker_count > 0:
      # grain reads absl flags in its worker setup and raises
      # UnparsedFlagAccessError outside absl.app.run (environment.md §2).
      from absl import flags  # pylint: disable=g-import-not-at-top
      if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
      it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.worker_count))
    return iter(it_ds)

  def __next__(self) -> dict[str, np.ndarray]:
    if self.num_steps is not None and self._position >= self.num_steps:
      raise StopIteration
    if self._pipeline is None:
      self._pipeline = self._start()
    batch = next(self._pipeline)
    if self.worker_count > 0:
      _unlink_shared_memory(batch)
    self._position += 1
    return batch

  def __len__(self) -> int:
    if self.num_steps is None:
      raise TypeError("An infinite train loader (num_epochs=None) has no len().")
    return self.num_steps

  def get_state(self) -> dict[str, Any]:
    """JSON-able state: the loader's identity and the next batch's index."""
    return {"loader": dict(self._meta), "pipeline": {"next_batch": self._position}}

  def set_state(self, state: dict[str, Any]) -> None:
    """Resumes from `get_state()` of an identically configured loader."""
    if not isinstance(state, dict) or "loader" not in state or "pipeline" not in state:
      raise ValueError("set_state expects a dict from LoaderIterator.get_state().")
    if dict(state["loader"]) != self._meta:
      diff = {k: (state["loader"].get(k), v) for k, v in self._meta.items()
              if state["loader"].get(k) != v}
      raise ValueError(f"Loader state was saved by a differently configured loader "
                       f"(saved, current): {diff}. Rebuild the loader with the saved settings.")
    self.close()
    self._closed = False
    self._position = int(state["pipeline"]["next_batch"])

  def close(self) -> None:
    """Stops the pipeline's threads / worker processes (restarted by the next `next`)."""
    if self._pipeline is not None:
      close = getattr(self._pipeline, "close", None)
      if close is not None:
        close()
      self._pipeline = None

  def __str__(self) -> str:
    return f"LoaderIterator({self._meta})"


def _unlink_shared_memory(batch: dict[str, Any]) -> None:
  """Removes the names of a worker batch's shared-memory blocks, keeping the arrays valid.

  grain passes worker batches as arrays mapped from ``/dev/shm`` blocks and
  unlinks each block when its array is garbage-collected, from a background
  thread. Blocks whose array is still alive, or whose deletion is still queued,
  when the process exits stay in ``/dev/shm`` until Python's resource tracker
  removes them with a "leaked shared_memory objects" warning. Unlinking the
  name at once (POSIX: the mapping lives on until it is unmapped) leaves
  nothing behind, however the process ends.
  """
  for value in batch.values():
    shm = getattr(value, "shm", None)
    # `_unlink_on_del` is grain's flag (grain/_src/python/ipc/shared_memory_array.py) that
    # makes the array unlink its block when deleted: the name is gone, it must only close.
    if isinstance(shm, shared_memory.SharedMemory) and getattr(value, "_unlink_on_del", False):
      shm.unlink()
      value._unlink_on_del = False  # pylint: disable=protected-access


def _process_defaults(process_index: Optional[int], process_count: Optional[int]) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"Need 0 <= process_index < process_count, got {process_index} and "
                     f"{process_count}.")
  return int(process_index), int(process_count)


def _local_batch(global_batch_size: int, process_count: int) -> int:
  if global_batch_size < 1:
    raise ValueError(f"global_batch_size must be positive, got {global_batch_size}.")
  if global_batch_size % process_count:
    raise ValueError(f"global_batch_size={global_batch_size} is not divisible by "
                     f"process_count={process_count}; use a multiple of {process_count} "
                     f"(each process loads global_batch_size // process_count rows).")
  return global_batch_size // process_count


def usable_cores() -> int:
  """CPU cores this process may run on (its affinity mask)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # pragma: no cover - not Linux
    return os.cpu_count() or 1


def resolve_worker_count(worker_count: Union[int, str, None], *, decodes_per_step: bool) -> int:
  """``'auto'`` (or ``None``) -> usable cores - 1 (>= 1) if records are decoded per step, else 0.

  One core is left to the training process itself (dispatch, host-to-device
  copies). With several training processes on one host, pass an explicit count
  (about cores / processes - 1).
  """
  if worker_count is None or worker_count == "auto":
    return max(1, usable_cores() - 1) if decodes_per_step else 0
  if isinstance(worker_count, str) or int(worker_count) < 0:
    raise ValueError(f"worker_count must be 'auto' or >= 0, got {worker_count!r}.")
  return int(worker_count)


def make_train_loader(name: str, *, global_batch_size: int, seed: int,
                      data_dir: Optional[str] = None, process_index: Optional[int] = None,
                      process_count: Optional[int] = None, num_epochs: Optional[int] = None,
                      worker_count: Union[int, str, None] = "auto",
                      cache_in_memory: Union[bool, str] = "auto",
                      split: Optional[str] = None, num_threads: int = 2,
                      prefetch_batches: int = 2,
                      host_crops: Optional[Sequence[HostCrop]] = None,
                      image_folder: Optional[str] = None) -> LoaderIterator:
  """Shuffled, sharded, checkpointable training batches.

  Args:
    name: dataset name (`ssljax.data.datasets.dataset_names()`).
    global_batch_size: batch size summed over processes.
    seed: shuffling (and host-crop) seed (non-negative int).
    data_dir: TFDS data dir; ``None`` means TFDS's default.
    process_index: this process; default ``jax.process_index()``.
    process_count: number of processes; default ``jax.process_count()``.
    num_epochs: passes over the shard; ``None`` repeats forever.
    worker_count: grain worker processes (0: threads in this process);
      ``'auto'``: see `resolve_worker_count` (workers only for ImageNet-like
      datasets that are decoded per step; cached arrays would be copied to
      every worker).
    cache_in_memory: ``'auto'``, ``True`` or ``False`` (see module docstring).
    split: split to read; default ``info.train_split`` (``labeled_split`` for a
      linear probe on STL-10).
    num_threads: grain reader threads (per worker).
    prefetch_batches: batches read ahead.
    host_crops: one `HostCrop` per view (same ``size``): random resized
      crops cut on the host from the whole image (ImageNet datasets only; see
      `ssljax.data.crops`). ``None``: host-size images, crops on the device.
    image_folder: root of an ImageNet class-folder tree read instead of TFDS
      (`ssljax.data.image_folder`).

  Returns:
    A `LoaderIterator` yielding ``{'image': uint8 [L, H, W, C], 'label': int32 [L],
    'index': int32 [L]}`` (``index``: position of each record in the split)
    with ``L = global_batch_size // process_count`` (STL-10's unlabelled
    records have label -1). With ``host_crops`` the images are the views,
    ``uint8 [L, V, S, S, 3]``.

  Raises:
    ValueError: bad batch size / process arguments, or a shard smaller than one batch.
    DatasetNotPreparedError: the data is not prepared.
  """
  info = get_dataset_info(name)
  split = split or info.train_split
  process_index, process_count = _process_defaults(process_index, process_count)
  local_batch = _local_batch(global_batch_size, process_count)
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs must be None (infinite) or >= 1, got {num_epochs}.")
  if host_crops is not None:
    host_crops = tuple(host_crops)
    if not info.variable_size:
      raise ValueError(f"host_crops are for datasets of variable-size JPEGs (ImageNet), not "
                       f"{info.name!r}; its views are cropped on the device.")
    if not host_crops or len({c.size for c in host_crops}) != 1:
      raise ValueError(f"host_crops need >= 1 view, all of one size; got {host_crops}.")
  source = open_data_source(info, split, data_dir=data_dir, image_folder=image_folder,
                            encoded=host_crops is not None)
  num_records = len(source)
  shard_size = num_records // process_count
  shard_start = process_index * shard_size
  steps_per_epoch = shard_size // local_batch
  if steps_per_epoch == 0:
    raise ValueError(f"{info.name}/{split}: a process shard has {shard_size} records, fewer "
                     f"than one local batch of {local_batch}. Use a smaller global_batch_size.")
  cached = host_crops is None and _should_cache(cache_in_memory, info, num_records)
  if host_crops is not None:
    reader = _CropReader(info, source=source, crops=host_crops, seed=int(seed))
    batch_start = shard_start
  elif cached and image_folder is None:
    arrays = _cached_range(info.name, split, data_dir, shard_start, shard_start + shard_size)
    reader = _Reader(info, arrays=arrays, offset=shard_start)
    batch_start = 0  # Cached arrays hold only this shard.
  else:
    reader = _Reader(info, source=source)
    batch_start = shard_start
  batch_fn = _TrainBatch(reader, shard_start=batch_start, shard_size=shard_size,
                         local_batch=local_batch, steps_per_epoch=steps_per_epoch,
                         seed=int(seed), process_index=process_index)
  workers = resolve_worker_count(worker_count, decodes_per_step=info.variable_size and not cached)
  meta = {"kind": "train", "dataset": info.name, "split": split, "seed": int(seed),
          "global_batch_size": int(global_batch_size), "process_index": process_index,
          "process_count": process_count, "num_records": num_records,
          "num_epochs": num_epochs,
          "host_crops": None if host_crops is None else [c.to_dict() for c in host_crops]}
  return LoaderIterator(batch_fn, meta=meta, info=info, split=split,
                        local_batch_size=local_batch, steps_per_epoch=steps_per_epoch,
                        num_steps=None if num_epochs is None else steps_per_epoch * num_epochs,
                        worker_count=workers, num_threads=num_threads,
                        prefetch_batches=prefetch_batches)


def make_eval_loader(name: str, split: Optional[str] = None, *, global_batch_size: int,
                     data_dir: Optional[str] = None, process_index: Optional[int] = None,
                     process_count: Optional[int] = None,
                     cache_in_memory: Union[bool, str] = "auto", num_threads: int = 2,
                     prefetch_batches: int = 2, image_folder: Optional[str] = None,
                     worker_count: Union[int, str, None] = 0) -> LoaderIterator:
  """One in-order pass over a split, last batch padded, with a ``mask``.

  Args:
    name: dataset name.
    split: split to read; ``None`` means ``info.eval_split``.
    global_batch_size: batch size summed over processes.
    data_dir: TFDS data dir.
    process_index: this process; default ``jax.process_index()``.
    process_count: number of processes; default ``jax.process_count()``.
    cache_in_memory: ``'auto'``, ``True`` or ``False``.
    num_threads: grain reader threads.
    prefetch_batches: batches read ahead.
    image_folder: root of an ImageNet class-folder tree read instead of TFDS.
    worker_count: grain worker processes, or ``'auto'`` (`resolve_worker_count`).

  Returns:
    A finite `LoaderIterator` (``len`` = ``ceil(N / global_batch_size)``)
    yielding ``{'image': uint8 [L,H,W,C], 'label': int32 [L], 'mask': bool [L]}``.
    Over all processes and steps every record appears exactly once with
    ``mask=True``; padding rows are zeros with ``mask=False``. ImageNet images
    are resized (short side 256) and centre-cropped to 256 on the host.
  """
  info = get_dataset_info(name)
  split = split or info.eval_split
  process_index, process_count = _process_defaults(process_index, process_count)
  local_batch = _local_batch(global_batch_size, process_count)
  source = open_data_source(info, split, data_dir=data_dir, image_folder=image_folder)
  num_records = len(source)
  num_steps = math.ceil(num_records / global_batch_size)
  cached = image_folder is None and _should_cache(cache_in_memory, info, num_records)
  if cached:
    reader = _Reader(info, arrays=_cached_range(info.name, split, data_dir, 0, num_records))
  else:
    reader = _Reader(info, source=source)
  batch_fn = _EvalBatch(reader, num_records=num_records, global_batch=global_batch_size,
                        local_batch=local_batch, process_index=process_index)
  meta = {"kind": "eval", "dataset": info.name, "split": split,
          "global_batch_size": int(global_batch_size), "process_index": process_index,
          "process_count": process_count, "num_records": num_records}
  workers = resolve_worker_count(worker_count, decodes_per_step=info.variable_size and not cached)
  return LoaderIterator(batch_fn, meta=meta, info=info, split=split,
                        local_batch_size=local_batch, steps_per_epoch=num_steps,
                        num_steps=num_steps, worker_count=workers, num_threads=num_threads,
                        prefetch_batches=prefetch_batches)
