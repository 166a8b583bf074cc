"""Synthetic ImageNet-like JPEG datasets (both layouts) for tests and benchmarks.

`photo_like` draws an image whose JPEG size and decode cost resemble a photo's
(smooth large-scale colour field + mid-frequency texture + sensor-like noise;
~70 KB at 500x375, quality 90; ImageNet's mean is ~110 KB at ~400x350).
`write_image_folder` writes the ``<root>/{train,val}/<wnid>/*.JPEG`` tree read
by `ssljax.data.image_folder`; `write_tfds_imagenet` writes the same images as
a TFDS ``imagenet2012`` array_record dataset (version 5.1.0, the catalogue's
features: JPEG ``image``, ``label`` over the 1000 sorted WordNet ids,
``file_name``), readable with ``tfds.data_source('imagenet2012', ...)`` and
so by the loader, without TensorFlow.

Example:
  >>> im = photo_like(np.random.default_rng(0), 30, 40)
  >>> im.shape, im.dtype
  ((30, 40, 3), dtype('uint8'))
"""

from __future__ import annotations

import io
import os
from typing import Optional, Sequence

import numpy as np


def photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """A ``uint8 [height, width, 3]`` image with photo-like spectra."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  def field(cell: int, amp: float) -> np.ndarray:
    small = rng.uniform(-amp, amp, (height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    return np.stack([np.asarray(Image.fromarray(small[..., c]).resize((width, height),
                                                                       Image.BICUBIC))
                     for c in range(3)], -1)

  img = 128.0 + field(48, 110) + field(6, 35) + rng.normal(0, 6, (height, width, 3))
  return np.clip(img, 0, 255).astype(np.uint8)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
  """JPEG bytes of ``uint8 [h, w, 3]`` (4:2:0 chroma subsampling, like most photos)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  buf = io.BytesIO()
  Image.fromarray(image).save(buf, "JPEG", quality=quality)
  return buf.getvalue()


def random_size(rng: np.random.Generator) -> tuple[int, int]:
  """``(h, w)`` around ImageNet's typical 375x500 / 500x375 (a few odd sizes)."""
  long_side = int(rng.choice([500, 500, 500, 400, 640, 333]))
  short_side = int(round(long_side * rng.choice([0.75, 0.75, 0.666, 1.0, 0.5])))
  return (short_side, long_side) if rng.uniform() < 0.8 else (long_side, short_side)


def make_examples(num_images: int, wnids: Sequence[str], *, seed: int = 0, quality: int = 90,
                  sizes: Optional[Sequence[tuple[int, int]]] = None) -> list[tuple[bytes, str]]:
  """``(jpeg bytes, wnid)`` pairs, classes assigned round-robin.

  Each image is a random window of one of a few large `photo_like` canvases
  with a random per-channel gain and flip (fast, and still photo-like).

  Args:
    num_images: number of images.
    wnids: class ids to cycle through.
    seed: RNG seed.
    quality: JPEG quality.
    sizes: ``(h, w)`` per image, cycled; default `random_size`.
  """
  rng = np.random.default_rng(seed)
  hw = [sizes[i % len(sizes)] if sizes else random_size(rng) for i in range(num_images)]
  side = max(max(h, w) for h, w in hw) if hw else 1
  canvases = [photo_like(rng, side + 64, side + 64) for _ in range(min(4, num_images) or 1)]
  out = []
  for i, (h, w) in enumerate(hw):
    c = canvases[i % len(canvases)]
    y, x = rng.integers(0, c.shape[0] - h + 1), rng.integers(0, c.shape[1] - w + 1)
    im = c[y:y + h, x:x + w] * rng.uniform(0.7, 1.3, 3)
    im = np.clip(im[:, ::-1] if rng.uniform() < 0.5 else im, 0, 255).astype(np.uint8)
    out.append((encode_jpeg(im, quality), wnids[i % len(wnids)]))
  return out


def write_image_folder(root: str, split_examples: dict[str, list[tuple[bytes, str]]]) -> str:
  """Writes ``<root>/<train|val>/<wnid>/<wnid>_<k>.JPEG``; returns ``root``.

  Args:
    root: output folder.
    split_examples: ``{'train': [(bytes, wnid), ...], 'val': [...]}``.
  """
  for split, examples in split_examples.items():
    for k, (data, wnid) in enumerate(examples):
      d = os.path.join(root, split, wnid)
      os.makedirs(d, exist_ok=True)
      with open(os.path.join(d, f"{wnid}_{k}.JPEG"), "wb") as f:
        f.write(data)
  return root


def write_tfds_imagenet(data_dir: str, split_examples: dict[str, list[tuple[bytes, str]]]) -> str:
  """Writes the examples as TFDS ``imagenet2012`` 5.1.0 (array_record) under ``data_dir``.

  Args:
    data_dir: TFDS data dir.
    split_examples: ``{'train': [...], 'validation': [...]}`` of ``(jpeg bytes, wnid)``.

  Returns:
    The version folder written.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  names_file = os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012",
                            "labels.txt")

  class _SyntheticImagenet(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = "imagenet2012"
    VERSION = tfds.core.Version("5.1.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self,
          features=tfds.features.FeaturesDict({
              "image": tfds.features.Image(encoding_format="jpeg"),
              "label": tfds.features.ClassLabel(names_file=names_file),
              "file_name": tfds.features.Text()}),
          supervised_keys=("image", "label"), disable_shuffling=True)

    def _split_generators(self, dl_manager):
      del dl_manager
      return {s: self._generate_examples(ex) for s, ex in split_examples.items()}

    def _generate_examples(self, examples):
      for k, (data, wnid) in enumerate(examples):
        # Bytes are stored as is (no re-encoding): the loader sees these JPEGs.
        yield k, {"image": io.BytesIO(data), "label": wnid, "file_name": f"{wnid}_{k}.JPEG"}

  builder = _SyntheticImagenet(data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False))
  return os.fspath(builder.data_dir)
