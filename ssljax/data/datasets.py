"""Registry of the image datasets ssljax trains on.

`get_dataset_info(name)` returns a frozen `DatasetInfo` with everything the
loader and the augmentations need: the TFDS name and splits, the fixed host-side
image shape, the per-channel mean/std (in [0, 1] units) used to normalise views,
and the split sizes.

Splits (TFDS names):

* ``train_split``: the split used for self-supervised pre-training.
* ``labeled_split``: the labelled training split for the linear probe / kNN
  bank (differs from ``train_split`` only for STL-10, which pre-trains on
  ``train+unlabelled``).
* ``eval_split``: the held-out split reported in papers (ImageNet: ``validation``).

Host shapes: fixed-size datasets keep their native shape. ImageNet images vary
in size. For training, each view's random resized crop is sampled on the whole
image and cut on the host (`ssljax.data.crops`, the loader's ``host_crops``),
as in the papers; ``image_shape`` (256x256) is the host shape of the other
path, used for evaluation (short side resized to 256, centre-cropped; the
eval view is its centre 224) and for training without host crops (crops then
come from that centre square, on the device). ImageNet can also be read from
a class-folder tree (`ssljax.data.image_folder`).

Tiny-ImageNet is not in the TFDS catalogue: ``tiny_imagenet`` is read through
a small TF-free builder (`ssljax.data.tiny_imagenet`) from the
``tiny-imagenet-200/`` folder of the official zip. Such ssljax-defined builders
(also ``fashion_mnist_idx``) are listed in `LOCAL_BUILDERS`;
`register_local_builder` / `prepare_local_builder` import and build them.

ImageNet-100 is ImageNet-2012 restricted to the 100 classes of CMC
(Tian et al., 2020) listed in ``imagenet100_classes.txt`` (from solo-learn);
labels are remapped to 0..99 in sorted-WordNet-id order, which is the order of
torchvision's ``ImageFolder`` on a folder of those classes (solo-learn's setup).

Example:
  >>> info = get_dataset_info('cifar10')
  >>> info.image_shape, info.mean
  ((32, 32, 3), (0.4914, 0.4822, 0.4465))
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import re
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static description of a dataset.

  Attributes:
    name: ssljax name (registry key).
    tfds_name: TFDS builder name; ``None`` for in-package sources (``digits``).
    num_classes: number of labels (after any class-subset remapping).
    image_shape: fixed host-side shape ``(H, W, C)`` of ``uint8`` images.
    mean: per-channel mean in [0, 1] units (length C).
    std: per-channel standard deviation in [0, 1] units (length C).
    train_split: split for self-supervised pre-training.
    eval_split: held-out evaluation split.
    num_train: examples in ``train_split``.
    num_eval: examples in ``eval_split``.
    labeled_split: labelled split for the linear probe / kNN bank.
    num_labeled: examples in ``labeled_split``.
    view_size: default side of augmented views (random-resized-crop output).
    variable_size: stored images vary in size and are resized on the host.
    class_subset: name of a class-subset list (``'imagenet100'``) or ``None``.
  """

  name: str
  tfds_name: Optional[str]
  num_classes: int
  image_shape: tuple[int, int, int]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  train_split: str
  eval_split: str
  num_train: int
  num_eval: int
  labeled_split: str
  num_labeled: int
  view_size: int
  variable_size: bool = False
  class_subset: Optional[str] = None

  @property
  def num_channels(self) -> int:
    return self.image_shape[-1]


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR10_STD = (0.2470, 0.2435, 0.2616)

_REGISTRY: dict[str, DatasetInfo] = {
    # Mean/std computed from the 60k training images (IDX files).
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist", tfds_name="fashion_mnist_idx", num_classes=10,
        image_shape=(28, 28, 1), mean=(0.2860,), std=(0.3530,),
        train_split="train", eval_split="test", num_train=60000, num_eval=10000,
        labeled_split="train", num_labeled=60000, view_size=28),
    # solo-learn's CIFAR values (classification_dataloader.py); std is the
    # per-pixel std of the training set, not the 0.2023/0.1994/0.2010 of some repos.
    "cifar10": DatasetInfo(
        name="cifar10", tfds_name="cifar10", num_classes=10, image_shape=(32, 32, 3),
        mean=_CIFAR10_MEAN, std=_CIFAR10_STD,
        train_split="train", eval_split="test", num_train=50000, num_eval=10000,
        labeled_split="train", num_labeled=50000, view_size=32),
    # Training-set statistics of CIFAR-100 (solo-learn reuses CIFAR-10's values).
    "cifar100": DatasetInfo(
        name="cifar100", tfds_name="cifar100", num_classes=100, image_shape=(32, 32, 3),
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
        train_split="train", eval_split="test", num_train=50000, num_eval=10000,
        labeled_split="train", num_labeled=50000, view_size=32),
    # solo-learn's STL-10 values; TFDS labels the unlabelled split -1.
    "stl10": DatasetInfo(
        name="stl10", tfds_name="stl10", num_classes=10, image_shape=(96, 96, 3),
        mean=(0.4914, 0.4823, 0.4466), std=(0.247, 0.243, 0.261),
        train_split="train+unlabelled", eval_split="test", num_train=105000, num_eval=8000,
        labeled_split="train", num_labeled=5000, view_size=96),
    "imagenet2012": DatasetInfo(
        name="imagenet2012", tfds_name="imagenet2012", num_classes=1000,
        image_shape=(256, 256, 3), mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        train_split="train", eval_split="validation", num_train=1281167, num_eval=50000,
        labeled_split="train", num_labeled=1281167, view_size=224, variable_size=True),
    "imagenet100": DatasetInfo(
        name="imagenet100", tfds_name="imagenet2012", num_classes=100,
        image_shape=(256, 256, 3), mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        train_split="train", eval_split="validation", num_train=126689, num_eval=5000,
        labeled_split="train", num_labeled=126689, view_size=224, variable_size=True,
        class_subset="imagenet100"),
    # Tiny-ImageNet (cs231n): built offline from tiny-imagenet-200/ (ssljax/data/tiny_imagenet.py);
    # 'validation' is the labelled 10k set papers report on. Mean/std: W-MSE's
    # datasets/tiny_in.py (training-set statistics; CorInfoMax uses ImageNet's).
    "tiny_imagenet": DatasetInfo(
        name="tiny_imagenet", tfds_name="tiny_imagenet_folder", num_classes=200,
        image_shape=(64, 64, 3), mean=(0.480, 0.448, 0.398), std=(0.277, 0.269, 0.282),
        train_split="train", eval_split="validation", num_train=100000, num_eval=10000,
        labeled_split="train", num_labeled=100000, view_size=64),
    # scikit-learn's 8x8 digits (0..16 rescaled to uint8), for tiny offline
    # tests: train = the first 1500 images, test = the remaining 297.
    "digits": DatasetInfo(
        name="digits", tfds_name=None, num_classes=10, image_shape=(8, 8, 1),
        mean=(0.3052,), std=(0.3749,),
        train_split="train", eval_split="test", num_train=1500, num_eval=297,
        labeled_split="train", num_labeled=1500, view_size=8),
}

_ALIASES = {"imagenet": "imagenet2012", "imagenet1k": "imagenet2012",
            "fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist",
            "tiny-imagenet": "tiny_imagenet", "tinyimagenet": "tiny_imagenet",
            "tiny-imagenet-200": "tiny_imagenet"}

# TFDS builders defined in ssljax and built offline on first use (no TensorFlow):
# TFDS name -> (module, prepare function ``fn(data_dir)``).
LOCAL_BUILDERS = {
    "fashion_mnist_idx": ("ssljax.data.fashion_mnist", "prepare_fashion_mnist"),
    "tiny_imagenet_folder": ("ssljax.data.tiny_imagenet", "prepare_tiny_imagenet"),
}
# Local builders that `get_dataset_info` registers with TFDS (the loader imports
# fashion_mnist itself).
_REGISTER_ON_LOOKUP = ("tiny_imagenet_folder",)


def dataset_names() -> tuple[str, ...]:
  """The registered dataset names."""
  return tuple(_REGISTRY)


def get_dataset_info(name: str) -> DatasetInfo:
  """Returns the `DatasetInfo` of ``name`` (case-insensitive; a few aliases).

  Looking up ``'tiny_imagenet'`` imports its TFDS builder
  (`ssljax.data.tiny_imagenet`, which imports TFDS) so that TFDS can open it.

  Raises:
    ValueError: for an unknown name; the message lists the valid names.
  """
  if not isinstance(name, str):
    raise ValueError(f"Dataset name must be a string, got {type(name).__name__}.")
  key = _ALIASES.get(name.lower(), name.lower())
  if key not in _REGISTRY:
    raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(_REGISTRY)} "
                     f"(aliases: {', '.join(_ALIASES)}).")
  info = _REGISTRY[key]
  if info.tfds_name in _REGISTER_ON_LOOKUP:
    # TFDS only knows builders whose module was imported; without this, opening an
    # unprepared dataset fails with TFDS's "not found" instead of our instructions.
    register_local_builder(info.tfds_name)
  return info


def with_validation_holdout(info: DatasetInfo, examples: int) -> DatasetInfo:
  """``info`` with its last ``examples`` labelled training records as the evaluation split.

  For choosing hyper-parameters without looking at the test split: pre-training,
  the kNN bank and the probes use the first ``num_labeled - examples`` records,
  and every evaluation reads the held-out rest. Splits are TFDS slice strings
  (``'train[:50000]'``, ``'train[50000:]'``), which TFDS reads natively and
  ssljax's in-package sources (``digits``) parse; the record order is the
  source's own (shuffled for the TFDS-built datasets, so the held-out part has
  every class).

  Args:
    info: a dataset whose pre-training split is its labelled split.
    examples: how many records to hold out; ``0`` returns ``info`` unchanged.
  Raises:
    ValueError: ``examples`` not in ``[0, num_labeled)``, or a dataset whose
      pre-training split differs from its labelled split (STL-10).

  >>> v = with_validation_holdout(get_dataset_info('fashion_mnist'), 10000)
  >>> v.train_split, v.labeled_split, v.eval_split, v.num_train, v.num_eval
  ('train[:50000]', 'train[:50000]', 'train[50000:]', 50000, 10000)
  """
  if examples == 0:
    return info
  if not 0 < examples < info.num_labeled:
    raise ValueError(f"data.validation_holdout={examples} must be in [0, {info.num_labeled}) "
                     f"for {info.name} ({info.num_labeled} labelled training records).")
  if info.class_subset is not None:
    raise ValueError(f"data.validation_holdout is not supported for {info.name}: a class subset "
                     "is selected after the split is read, so a slice would not hold out "
                     f"{examples} of its records.")
  if info.train_split != info.labeled_split or "[" in info.train_split or "+" in info.train_split:
    raise ValueError(f"data.validation_holdout is not supported for {info.name}: its pre-training "
                     f"split {info.train_split!r} is not its labelled split {info.labeled_split!r}.")
  keep = info.num_labeled - examples
  fit = f"{info.train_split}[:{keep}]"
  return dataclasses.replace(info, train_split=fit, labeled_split=fit, num_train=keep,
                             num_labeled=keep, eval_split=f"{info.train_split}[{keep}:]",
                             num_eval=examples)


def split_slice(split: str) -> tuple[str, slice]:
  """``'train[10:20]'`` → ``('train', slice(10, 20))``; a plain name gets ``slice(None)``.

  Only absolute record indices (TFDS also reads percentages; ssljax writes
  indices, `with_validation_holdout`).

  >>> split_slice('train[:50000]')
  ('train', slice(None, 50000, None))
  """
  m = re.fullmatch(r"([A-Za-z_]+)(?:\[(-?\d*):(-?\d*)\])?", split)
  if m is None:
    raise ValueError(f"cannot read split {split!r}: expected NAME or NAME[start:stop] with "
                     "integer record indices.")
  start, stop = (int(v) if v else None for v in (m.group(2), m.group(3)))
  return m.group(1), slice(start, stop)


@functools.lru_cache(maxsize=None)
def class_subset_wnids(subset: str = "imagenet100") -> tuple[str, ...]:
  """WordNet ids of a class subset, in the order of the shipped list file.

  Args:
    subset: ``'imagenet100'`` (file ``imagenet100_classes.txt`` next to this module).
  """
  path = os.path.join(os.path.dirname(__file__), f"{subset}_classes.txt")
  if not os.path.isfile(path):
    raise ValueError(f"Unknown class subset {subset!r} (no file {os.path.basename(path)}).")
  with open(path, encoding="utf-8") as f:
    wnids = tuple(tok for line in f if not line.startswith("#") for tok in line.split())
  if len(set(wnids)) != len(wnids):
    raise ValueError(f"{path}: duplicate class ids.")
  return wnids


def subset_label_map(class_names: list[str] | tuple[str, ...], subset: str = "imagenet100") -> np.ndarray:
  """Maps original label ids to subset labels 0..K-1 (sorted-wnid order), else -1.

  Args:
    class_names: the original ClassLabel names, e.g. TFDS ``imagenet2012``'s
      1000 WordNet ids (``builder.info.features['label'].names``).
    subset: class-subset name.

  Returns:
    ``int32 [len(class_names)]``: new label of each original label, ``-1`` for
    classes outside the subset.

  Raises:
    ValueError: if a subset class is missing from ``class_names``.
  """
  wnids = sorted(class_subset_wnids(subset))
  index = {n: i for i, n in enumerate(class_names)}
  missing = [w for w in wnids if w not in index]
  if missing:
    raise ValueError(f"{len(missing)} classes of {subset!r} are not among the dataset's "
                     f"class names (e.g. {missing[:3]}); is this ImageNet-2012?")
  table = np.full(len(class_names), -1, np.int32)
  for new, w in enumerate(wnids):
    table[index[w]] = new
  return table


def register_local_builder(tfds_name: Optional[str]) -> bool:
  """Imports the module defining ``tfds_name`` (registering its builder with TFDS).

  Returns:
    ``True`` for a builder of `LOCAL_BUILDERS`, ``False`` otherwise (nothing imported).
  """
  if tfds_name not in LOCAL_BUILDERS:
    return False
  importlib.import_module(LOCAL_BUILDERS[tfds_name][0])
  return True


def prepare_local_builder(tfds_name: Optional[str], data_dir: Optional[str] = None) -> bool:
  """Builds an ssljax-defined TFDS dataset into ``data_dir`` unless already prepared.

  Args:
    tfds_name: TFDS name (e.g. ``info.tfds_name``).
    data_dir: TFDS data dir; ``None`` means TFDS's default.

  Returns:
    ``True`` if ``tfds_name`` is local (and is now prepared), ``False`` if it
    is a catalogue dataset that must be prepared with ``tfds build``.

  Raises:
    FileNotFoundError: the raw files are missing; the message says where to put them.
  """
  if tfds_name not in LOCAL_BUILDERS:
    return False
  module, fn = LOCAL_BUILDERS[tfds_name]
  getattr(importlib.import_module(module), fn)(data_dir)
  return True


def prepare_instructions(info: DatasetInfo, data_dir: Optional[str] = None) -> str:
  """How to prepare ``info``'s data so the TF-free loader can read it."""
  where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
  if info.tfds_name is None:
    return f"{info.name!r} ships with scikit-learn; `pip install scikit-learn`."
  if info.tfds_name == "fashion_mnist_idx":
    return ("It is built automatically from the IDX files: sudo apt-get install "
            "dataset-fashion-mnist, or set SSLJAX_FASHION_MNIST_DIR to a folder with the four "
            "IDX files.")
  if info.tfds_name == "tiny_imagenet_folder":
    from ssljax.data import tiny_imagenet  # pylint: disable=g-import-not-at-top
    return f"It is built from the tiny-imagenet-200 folder: {tiny_imagenet.prepare_help(data_dir)}."
  manual = ""
  if info.tfds_name == "imagenet2012":
    manual = (f" ImageNet needs a manual download: put ILSVRC2012_img_train.tar and "
              f"ILSVRC2012_img_val.tar in {where}/downloads/manual/ first.")
  return (f"Prepare it once in array_record format (the only format readable without "
          f"TensorFlow) on a machine with TensorFlow and internet:{manual} "
          f"pip install 'ssljax[tf]' && tfds build {info.tfds_name} --file_format=array_record "
          f"--data_dir={where} ; or point --config.data.data_dir (the `data_dir` argument) at a "
          f"TFDS data dir where it is already prepared in array_record format.")
