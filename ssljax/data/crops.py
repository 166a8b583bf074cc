"""Host-side random-resized crops of JPEGs: sample on the whole image, decode once, crop.

The random resized crop of BYOL (Grill et al., 2020, App. B), SimCLR (Chen et
al., 2020, App. A) and solo-learn is sampled on the *whole* decoded image:
area fraction ~ U[0.08, 1], log aspect ratio ~ U[log 3/4, log 4/3]. Here it
runs on the host, per view, before anything reaches the device:

1. `sample_crop_box` draws the box on the original ``height x width`` (read
   from the JPEG header), with torchvision's ``RandomResizedCrop.get_params``
   semantics (``torchvision/transforms/transforms.py``): up to 10 attempts,
   each accepted iff the box fits, then a fallback to a centre crop with the
   aspect ratio clamped to the range;
2. the JPEG is decoded ONCE per image, shared by its views, at the smallest
   DCT-domain scale (libjpeg-turbo: n/8, n = 1..8; Pillow: 1/1, 1/2, 1/4,
   1/8) at which every view's box is still at least ``size`` pixels on its
   short side (`decode_scale`), so no view is upsampled because of the
   reduced decode and the resize has less to filter;
3. each box (mapped to the reduced image) is resized to ``size x size`` with
   Pillow (``Image.resize(..., box=...)``: bicubic by default, antialiased
   when shrinking, as torchvision's PIL path used by solo-learn).

Everything after the crop (flip, colour jitter, grayscale, blur, solarisation)
stays on the device (`ssljax.data.augment.augment_views`, which skips its own
crop for host-cropped views). Evaluation keeps "resize the short side to 256,
centre crop 224" (`decode_resize_center_crop` + `augment.preprocess_eval`).

Decoders: Pillow always; ``simplejpeg`` (libjpeg-turbo, the ``[jpeg]`` extra)
when installed, which decodes ~15 % faster and also scales in the DCT domain
(benchmarks/input_pipeline.py, experiments/results/input_pipeline.md).
Non-JPEG and CMYK files fall back to Pillow.

Deviation from BYOL's TF code: TF resizes with ``tf.image.resize`` (bicubic,
no antialiasing) after ``decode_and_crop_jpeg``; Pillow antialiases when the
box is larger than the view, and the reduced decode averages 2x2..8x8 blocks.
Both only act when the crop is shrunk, i.e. they remove aliasing that TF keeps.

Example:
  >>> rng = np.random.default_rng(0)
  >>> top, left, h, w = sample_crop_box(rng, 375, 500)
  >>> 0 <= top <= 375 - h and 0 <= left <= 500 - w
  True
  >>> sample_crop_box(rng, 100, 1000, scale=(1.0, 1.0))   # impossible -> centre crop, ratio 4/3
  (0, 433, 100, 133)
"""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any, Sequence

import numpy as np

try:  # Optional libjpeg-turbo binding (the `[jpeg]` extra).
  import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - depends on the environment
  _simplejpeg = None

DEFAULT_SCALE = (0.08, 1.0)
DEFAULT_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_DCT_FACTORS = (8, 4, 2, 1)  # JPEG DCT-domain reductions, largest first.
_INTERPOLATIONS = {"bicubic": 3, "bilinear": 2, "lanczos": 1, "lanczos3": 1, "nearest": 0}


def sample_crop_box(rng: np.random.Generator, height: int, width: int, *,
                    scale: tuple[float, float] = DEFAULT_SCALE,
                    ratio: tuple[float, float] = DEFAULT_RATIO,
                    attempts: int = 10) -> tuple[int, int, int, int]:
  """A random-resized-crop box on a ``height x width`` image (torchvision semantics).

  Each attempt draws ``A = U(scale) * height * width`` and
  ``r = exp(U(log ratio))``, sets ``w = round(sqrt(A r))``, ``h = round(sqrt(A / r))``
  and accepts iff ``0 < w <= width`` and ``0 < h <= height``; then
  ``top ~ U{0..height-h}``, ``left ~ U{0..width-w}``. After ``attempts``
  failures: the largest centred box whose aspect ratio is ``width / height``
  clamped to ``ratio``.

  Args:
    rng: NumPy generator (the only source of randomness).
    height: image height (pixels).
    width: image width (pixels).
    scale: range of the box area as a fraction of the image area.
    ratio: range of the box aspect ratio ``w / h`` (sampled log-uniformly).
    attempts: tries before the centre-crop fallback.

  Returns:
    ``(top, left, h, w)`` ints with ``0 <= top``, ``top + h <= height`` (same for x).
  """
  if height < 1 or width < 1:
    raise ValueError(f"Image must be non-empty, got {height}x{width}.")
  if not 0 < scale[0] <= scale[1]:
    raise ValueError(f"scale must satisfy 0 < lo <= hi, got {scale}.")
  if not 0 < ratio[0] <= ratio[1]:
    raise ValueError(f"ratio must satisfy 0 < lo <= hi, got {ratio}.")
  area = height * width
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  for _ in range(attempts):
    target = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(log_lo, log_hi))
    w = int(round(math.sqrt(target * aspect)))
    h = int(round(math.sqrt(target / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return top, left, h, w
  in_ratio = width / height
  if in_ratio < ratio[0]:
    w, h = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    h, w = height, int(round(height * ratio[1]))
  else:
    w, h = width, height
  return (height - h) // 2, (width - w) // 2, h, w


@dataclasses.dataclass(frozen=True)
class HostCrop:
  """One view's host-side random resized crop.

  Attributes:
    size: output side ``S`` of the view.
    scale: area range (fraction of the whole image).
    ratio: aspect-ratio range ``w / h``.
    interpolation: ``'bicubic'`` (BYOL, SimCLR), ``'bilinear'``, ``'lanczos'``
      or ``'nearest'``.
  """

  size: int
  scale: tuple[float, float] = DEFAULT_SCALE
  ratio: tuple[float, float] = DEFAULT_RATIO
  interpolation: str = "bicubic"

  def __post_init__(self):
    object.__setattr__(self, "size", int(self.size))
    object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))
    object.__setattr__(self, "ratio", (float(self.ratio[0]), float(self.ratio[1])))
    if self.size < 1:
      raise ValueError(f"HostCrop.size must be positive, got {self.size}.")
    if self.interpolation not in _INTERPOLATIONS:
      raise ValueError(f"HostCrop.interpolation {self.interpolation!r}; use one of "
                       f"{sorted(_INTERPOLATIONS)}.")

  @classmethod
  def from_view_config(cls, view: Any) -> "HostCrop":
    """From an `ssljax.data.augment.ViewConfig` (its crop fields; ``crop_scale`` not None)."""
    if view.crop_scale is None:
      raise ValueError("This view has no random resized crop (crop_scale=None).")
    method = {"cubic": "bicubic", "linear": "bilinear", "lanczos5": "lanczos"}.get(
        view.resize_method, view.resize_method)
    return cls(size=view.output_size, scale=tuple(view.crop_scale),
               ratio=(math.exp(view.crop_log_ratio[0]), math.exp(view.crop_log_ratio[1])),
               interpolation=method)

  def to_dict(self) -> dict[str, Any]:
    return {"size": self.size, "scale": list(self.scale), "ratio": list(self.ratio),
            "interpolation": self.interpolation}


def dct_factor(scale: float) -> int:
  """Largest Pillow ``draft`` reduction ``k in {1, 2, 4, 8}`` with ``1 / k >= scale``."""
  return next(k for k in _DCT_FACTORS if k == 1 or k * scale <= 1.0)


def decode_scale(boxes: Sequence[tuple[int, int, int, int]], size: int) -> float:
  """Smallest decode scale (<= 1) keeping every box's short side >= ``size``."""
  return min(1.0, size / min(min(h, w) for _, _, h, w in boxes))


def _open(data: bytes):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return Image.open(io.BytesIO(data))


def _is_jpeg(data: bytes) -> bool:
  return data[:2] == b"\xff\xd8"


def image_size(data: bytes) -> tuple[int, int]:
  """``(height, width)`` of an encoded image, from its header only."""
  if _simplejpeg is not None and _is_jpeg(data):
    try:
      return tuple(_simplejpeg.decode_jpeg_header(data)[:2])
    except ValueError:
      pass
  width, height = _open(data).size
  return height, width


def _decode_reduced(data: bytes, scale: float, size_hw: tuple[int, int]):
  """Decodes ``data`` to RGB at the smallest DCT-domain scale >= ``scale``.

  libjpeg-turbo (simplejpeg) scales by n/8, n = 1..8; Pillow's ``draft`` by
  1/1, 1/2, 1/4, 1/8 (`dct_factor`).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  h, w = size_hw
  if _simplejpeg is not None and _is_jpeg(data):
    try:
      # The decoder picks the smallest n/8 whose output is at least this large.
      arr = _simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=math.ceil(h * scale),
                                    min_width=math.ceil(w * scale))
      return Image.fromarray(arr)
    except ValueError:
      pass  # CMYK and other exotic JPEGs: Pillow handles them.
  im = _open(data)
  factor = dct_factor(scale)
  if factor > 1:
    # Pillow picks the largest scale with size >= the request, i.e. floor(w / factor).
    im.draft("RGB", (w // factor, h // factor))
  im.load()
  return im if im.mode == "RGB" else im.convert("RGB")


def decode_random_crops(data: bytes, crops: Sequence[HostCrop],
                        rng: np.random.Generator) -> np.ndarray:
  """The views of one encoded image: ``uint8 [V, S, S, 3]`` (one decode shared by the views).

  Args:
    data: encoded image (JPEG; any format Pillow reads also works, at full scale).
    crops: one `HostCrop` per view; all must have the same ``size``.
    rng: generator for the boxes (view ``v`` uses the ``v``-th draws).

  Returns:
    ``uint8 [V, S, S, 3]`` (grayscale and CMYK images are converted to RGB).
  """
  size = crops[0].size
  if any(c.size != size for c in crops):
    raise ValueError(f"Host crops of one batch must share a size, got {[c.size for c in crops]}.")
  height, width = image_size(data)
  boxes = [sample_crop_box(rng, height, width, scale=c.scale, ratio=c.ratio) for c in crops]
  im = _decode_reduced(data, decode_scale(boxes, size), (height, width))
  # Map boxes to the decoded image (its size is ceil(side * n / 8)).
  sy, sx = im.height / height, im.width / width
  out = np.empty((len(crops), size, size, 3), np.uint8)
  for v, ((top, left, h, w), crop) in enumerate(zip(boxes, crops)):
    box = (left * sx, top * sy, (left + w) * sx, (top + h) * sy)
    out[v] = np.asarray(im.resize((size, size), _INTERPOLATIONS[crop.interpolation], box=box))
  return out


def decode_resize_center_crop(data: bytes, size: int, *,
                              reduce: bool = False) -> np.ndarray:
  """Decode, resize the short side to ``size`` (bicubic, antialiased), centre crop.

  The evaluation / legacy host transform on encoded bytes (the ImageFolder
  equivalent of `ssljax.data.loader.resize_short_side_center_crop`).

  Args:
    data: encoded image.
    size: output side.
    reduce: decode at the smallest DCT scale whose short side is >= ``size``
      first (faster, slightly different pixels); ``False`` decodes at full size.

  Returns:
    ``uint8 [size, size, 3]``.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top

  height, width = image_size(data)
  scale = decode_scale([(0, 0, height, width)], size) if reduce else 1.0
  im = _decode_reduced(data, scale, (height, width))
  w, h = im.size
  s = size / min(h, w)
  nh, nw = max(size, int(round(h * s))), max(size, int(round(w * s)))
  if (nh, nw) != (h, w):
    im = im.resize((nw, nh), Image.BICUBIC)
  top, left = (nh - size) // 2, (nw - size) // 2
  return np.ascontiguousarray(np.asarray(im)[top:top + size, left:left + size])
