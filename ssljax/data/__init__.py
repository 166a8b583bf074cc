"""Data: dataset registry, TF-free TFDS/grain loaders and on-device augmentations.

Host side (numpy, grain, TFDS without TensorFlow): `get_dataset_info`,
`make_train_loader`, `make_eval_loader`, `load_split_arrays`, and the
paper-faithful host-side random resized crops of ImageNet JPEGs (`HostCrop`,
`sample_crop_box`; docs/data.md). Device side
(pure JAX): `ViewConfig`, `byol_view_configs`, `augment_views`,
`preprocess_eval` and the single-image ops in `ssljax.data.augment`.
"""

from ssljax.data.crops import HostCrop, sample_crop_box
from ssljax.data.datasets import DatasetInfo, dataset_names, get_dataset_info
from ssljax.data.image_folder import ImageFolderNotFoundError
from ssljax.data.loader import (DatasetNotPreparedError, LoaderIterator, load_split_arrays,
                                make_eval_loader, make_train_loader)
