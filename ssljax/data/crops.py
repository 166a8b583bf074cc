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
3. each box (mapped to the reduced image) is resized to ``size x size`` by
   one of two resizers (`HostCrop.resize`, config ``data.host_resize``):

   * ``'opencv'`` (default): ``cv2.resize`` of the box, a fixed 4x4-tap
     bicubic without antialiasing, the convention of the TF code of BYOL
     (``byol/utils/dataset.py``: ``tf.image.resize(..., BICUBIC)``) and
     SimCLR (``data_util.py``: ``tf.image.resize_bicubic``). Kernels:
     OpenCV uses the cubic convolution of Keys with ``a = -0.75`` and
     half-pixel centres; TF2's ``tf.image.resize`` uses ``a = -0.5`` (half-pixel
     centres), TF1's ``resize_bicubic`` (SimCLR) ``a = -0.75`` without
     half-pixel centres. The box edges are rounded to the decoded image's
     pixel grid (exact at full scale; within half a decoded pixel, < 0.25 %
     of the box side, at a reduced scale). About 10x cheaper than Pillow
     (0.1 vs 1.0 CPU ms per 224x224 view).
   * ``'pillow'``: Pillow's ``Image.resize(..., box=...)`` (exact fractional
     box), antialiased when shrinking (the filter widens with the shrink
     factor), the convention of torchvision's ``RandomResizedCrop`` on PIL
     images, used by solo-learn, VICReg and Barlow Twins.

Everything after the crop (flip, colour jitter, grayscale, blur, solarisation)
stays on the device (`ssljax.data.augment.augment_views`, which skips its own
crop for host-cropped views). Evaluation keeps "resize the short side to 256,
centre crop 224" (`decode_resize_center_crop` + `augment.preprocess_eval`).

Decoders: Pillow always; ``simplejpeg`` (libjpeg-turbo, the ``[jpeg]`` extra)
when installed: within noise of Pillow's speed through the loader, but it
scales in the DCT domain at any n/8 where Pillow's ``draft`` stops at powers
of two (benchmarks/input_pipeline.py, experiments/results/input_pipeline.md).
Non-JPEG and CMYK files fall back to Pillow.

Deviation from the TF code of BYOL/SimCLR (which decodes the box at full
size): the reduced decode first shrinks by n/8 in the DCT domain, a low-pass
that TF does not apply; it only acts when every view's box is larger than
the view, and never shrinks a box below ``size``. The remaining shrink (from
the reduced box to ``size``) is done by the resizer above.

OpenCV runs single-threaded here (``cv2.setNumThreads(1)`` on first use):
the loader's threads and worker processes are the parallelism, and OpenCV's
own thread pool only added CPU time (0.10 vs 0.14 CPU ms per view measured).

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
# Pillow's resampling filter ids; OpenCV's flags are looked up in `_cv2_flag`.
_INTERPOLATIONS = {"bicubic": 3, "bilinear": 2, "lanczos": 1, "lanczos3": 1, "nearest": 0}
RESIZERS = ("opencv", "pillow")


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
    resize: ``'opencv'`` (no antialiasing, the TF convention of BYOL and
      SimCLR; fast) or ``'pillow'`` (antialiased, torchvision's PIL
      convention); see the module docstring.
  """

  size: int
  scale: tuple[float, float] = DEFAULT_SCALE
  ratio: tuple[float, float] = DEFAULT_RATIO
  interpolation: str = "bicubic"
  resize: str = "opencv"

  def __post_init__(self):
    object.__setattr__(self, "size", int(self.size))
    object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))
    object.__setattr__(self, "ratio", (float(self.ratio[0]), float(self.ratio[1])))
    if self.size < 1:
      raise ValueError(f"HostCrop.size must be positive, got {self.size}.")
    if self.interpolation not in _INTERPOLATIONS:
      raise ValueError(f"HostCrop.interpolation {self.interpolation!r}; use one of "
                       f"{sorted(_INTERPOLATIONS)}.")
    if self.resize not in RESIZERS:
      raise ValueError(f"HostCrop.resize {self.resize!r}; use one of {RESIZERS}.")

  @classmethod
  def from_view_config(cls, view: Any, resize: str = "opencv") -> "HostCrop":
    """From an `ssljax.data.augment.ViewConfig` (its crop fields; ``crop_scale`` not None)."""
    if view.crop_scale is None:
      raise ValueError("This view has no random resized crop (crop_scale=None).")
    method = {"cubic": "bicubic", "linear": "bilinear", "lanczos5": "lanczos"}.get(
        view.resize_method, view.resize_method)
    return cls(size=view.output_size, scale=tuple(view.crop_scale),
               ratio=(math.exp(view.crop_log_ratio[0]), math.exp(view.crop_log_ratio[1])),
               interpolation=method, resize=resize)

  def to_dict(self) -> dict[str, Any]:
    return {"size": self.size, "scale": list(self.scale), "ratio": list(self.ratio),
            "interpolation": self.interpolation, "resize": self.resize}


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


def _decode_reduced(data: bytes, scale: float, size_hw: tuple[int, int]) -> np.ndarray:
  """Decodes ``data`` to ``uint8 [h', w', 3]`` RGB at the smallest DCT-domain scale >= ``scale``.

  libjpeg-turbo (simplejpeg) scales by n/8, n = 1..8; Pillow's ``draft`` by
  1/1, 1/2, 1/4, 1/8 (`dct_factor`).
  """
  h, w = size_hw
  if _simplejpeg is not None and _is_jpeg(data):
    try:
      # The decoder picks the smallest n/8 whose output is at least this large.
      return _simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=math.ceil(h * scale),
                                     min_width=math.ceil(w * scale))
    except ValueError:
      pass  # CMYK and other exotic JPEGs: Pillow handles them.
  im = _open(data)
  factor = dct_factor(scale)
  if factor > 1:
    # Pillow picks the largest scale with size >= the request, i.e. floor(w / factor).
    im.draft("RGB", (w // factor, h // factor))
  im.load()
  return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


_cv2_module = None


def _cv2():
  """OpenCV, imported on first use and set to one thread (see the module docstring)."""
  global _cv2_module
  if _cv2_module is None:
    import cv2  # pylint: disable=g-import-not-at-top
    cv2.setNumThreads(1)
    _cv2_module = cv2
  return _cv2_module


def _cv2_flag(interpolation: str) -> int:
  cv2 = _cv2()
  return {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR,
          "lanczos": cv2.INTER_LANCZOS4, "lanczos3": cv2.INTER_LANCZOS4,
          "nearest": cv2.INTER_NEAREST_EXACT}[interpolation]


def resize_box(image: np.ndarray, box: tuple[float, float, float, float], size: int, *,
               interpolation: str = "bicubic", resize: str = "opencv",
               pil_image: Any = None) -> np.ndarray:
  """Resizes the ``box = (x0, y0, x1, y1)`` of ``image`` to ``uint8 [size, size, 3]``.

  Args:
    image: ``uint8 [H, W, 3]``.
    box: the region, in pixels of ``image`` (may be fractional).
    size: output side.
    interpolation: see `HostCrop`.
    resize: ``'opencv'`` (box edges rounded to pixels, no antialiasing) or
      ``'pillow'`` (fractional box, antialiased when shrinking).
    pil_image: ``image`` as a PIL image, when the caller has one (saves a copy).

  Returns:
    ``uint8 [size, size, 3]``.
  """
  if resize == "pillow":
    from PIL import Image  # pylint: disable=g-import-not-at-top
    im = pil_image if pil_image is not None else Image.fromarray(image)
    return np.asarray(im.resize((size, size), _INTERPOLATIONS[interpolation], box=box))
  if resize != "opencv":
    raise ValueError(f"resize {resize!r}; use one of {RESIZERS}.")
  x0, y0 = int(round(box[0])), int(round(box[1]))
  x1, y1 = max(x0 + 1, int(round(box[2]))), max(y0 + 1, int(round(box[3])))
  return _cv2().resize(image[y0:y1, x0:x1], (size, size), interpolation=_cv2_flag(interpolation))


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
  image = _decode_reduced(data, decode_scale(boxes, size), (height, width))
  pil_image = None
  if any(c.resize == "pillow" for c in crops):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    pil_image = Image.fromarray(image)
  # Map boxes to the decoded image (its size is ceil(side * n / 8)).
  sy, sx = image.shape[0] / height, image.shape[1] / width
  out = np.empty((len(crops), size, size, 3), np.uint8)
  for v, ((top, left, h, w), crop) in enumerate(zip(boxes, crops)):
    box = (left * sx, top * sy, (left + w) * sx, (top + h) * sy)
    out[v] = resize_box(image, box, size, interpolation=crop.interpolation, resize=crop.resize,
                        pil_image=pil_image)
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
  im = Image.fromarray(_decode_reduced(data, scale, (height, width)))
  w, h = im.size
  s = size / min(h, w)
  nh, nw = max(size, int(round(h * s))), max(size, int(round(w * s)))
  if (nh, nw) != (h, w):
    im = im.resize((nw, nh), Image.BICUBIC)
  top, left = (nh - size) // 2, (nw - size) // 2
  return np.ascontiguousarray(np.asarray(im)[top:top + size, left:left + size])
