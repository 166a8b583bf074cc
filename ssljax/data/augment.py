"""On-device image augmentations for two-view SSL (pure JAX, jit/vmap-able).

Every random op is a function ``op(key, image, *, ...)`` of a PRNG key and ONE
float32 image ``[H, W, C]`` in [0, 1] with ``C in {1, 3}``; `augment_views`
vmaps them over the batch with one independent key per example and view,
inside the jitted train step. The deterministic building blocks
(`adjust_brightness`, `gaussian_blur`, `crop_box_from_uniforms`, ...) are
exposed for tests and custom pipelines.

The pipeline and defaults follow BYOL's official code (Grill et al., 2020,
App. B; ``byol/utils/dataset.py`` for the crop, ``byol/utils/augmentations.py``
for the rest), which ``deepmind/ssl_hsic`` reuses for SSL-HSIC:

1. random resized crop: area fraction ~ U[0.08, 1], log aspect ratio ~
   U[log 3/4, log 4/3], ONE sample with ``w = round(sqrt(A r))``,
   ``h = round(sqrt(A / r))`` clipped to the image (no retry loop, unlike
   torchvision), integer offset uniform over valid positions, then bicubic
   resize (Keys a = -0.5, no antialiasing, like TF's ``tf.image.resize``), clipped to [0, 1];
2. horizontal flip, p = 0.5;
3. colour jitter with p = 0.8: brightness (additive delta ~ U[-0.4, 0.4], TF
   style; torchvision multiplies), contrast (factor ~ U[0.6, 1.4] about the
   per-channel spatial mean, TF style; torchvision uses the grey mean),
   saturation (factor ~ U[0.8, 1.2] on HSV S, clipped), hue (delta ~ U[-0.1, 0.1]
   on HSV H, wrapped), in a random order, each followed by a clip to [0, 1];
4. grayscale with p = 0.2 (luma 0.2989 R + 0.5870 G + 0.1140 B, tiled to 3 channels);
5. Gaussian blur: separable, radius ``int(output_size / 10 / 2)`` (23 taps at
   224), sigma ~ U[0.1, 2], zero ("SAME") padding as in BYOL; p = 1.0 / 0.1;
6. solarisation ``x -> x if x < 0.5 else 1 - x``; p = 0.0 / 0.2;
7. normalisation ``(x - mean) / std`` with the dataset statistics.

Grayscale images (C = 1): brightness and contrast act on the single channel;
saturation, hue and to-grayscale are identities (an image with R = G = B has
zero saturation and undefined hue, and is already grey), so a 1-channel view
stays 1-channel.

Deviations from BYOL's code (all small, all deliberate):

* the crop is resampled from the full (host-side) image with
  ``jax.image.scale_and_translate``, so cubic taps just outside the crop box
  read real neighbouring pixels, where TF's decode-crop-then-resize clamps at
  the crop edge (only the outermost output pixels differ slightly);
* for ImageNet without host crops the crop is drawn from the 256x256 host
  image (short side resized to 256, center-cropped), not from the full JPEG.
  With host crops (`ssljax.data.crops`, the loader's ``host_crops``) the
  crop is sampled on the whole image on the host, with torchvision's retry
  loop and centre-crop fallback, and `augment_views` receives the cropped
  views ``[N, V, S, S, C]`` and skips step 1;
* an op with probability p is applied iff ``u < p`` (BYOL: ``u <= p``), so
  p = 0 never applies;
* grayscale inputs are supported (above); BYOL assumes RGB.

Implementation notes: under ``vmap`` a per-example ``lax.cond`` evaluates both
branches, so the random-order jitter is written as four "slots"; each slot runs
brightness, contrast and ONE combined HSV round trip and keeps the result of
the op that the permutation assigns to it (4 HSV round trips per image instead
of the 8 of a switch over the four ops per slot). `augment_views` traces views
that differ only in probabilities (BYOL's two views) once and vmaps over them.

Example:
  >>> v1, v2 = byol_view_configs(32)
  >>> images_uint8 = jnp.zeros((4, 32, 32, 3), jnp.uint8)
  >>> views = augment_views(jax.random.key(0), images_uint8, (v1, v2),
  ...                       mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
  >>> [v.shape for v in views]
  [(4, 32, 32, 3), (4, 32, 32, 3)]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence

import dm_pix as pix
import jax
import jax.numpy as jnp

_LOG_RATIO = (math.log(3.0 / 4.0), math.log(4.0 / 3.0))
_METHODS = {"bilinear": "linear", "linear": "linear", "bicubic": "cubic", "cubic": "cubic",
            "lanczos3": "lanczos3", "lanczos5": "lanczos5"}
_PADDINGS = {"zeros": "constant", "reflect": "reflect", "edge": "edge"}
_LUMA = (0.2989, 0.5870, 0.1140)  # TF / BYOL (rec601) grayscale weights.


def _check_image(image: jax.Array, fn: str) -> None:
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"{fn}: expected one image [H, W, C] with C in {{1, 3}}, got shape "
                     f"{image.shape}. Batches go through augment_views (or jax.vmap).")


def _resize_method(method: str) -> str:
  if method not in _METHODS:
    raise ValueError(f"Unknown resize method {method!r}; use one of {sorted(_METHODS)}.")
  return _METHODS[method]


def _bernoulli(key: jax.Array, prob: float) -> jax.Array:
  # u < p: p = 0 never applies, p = 1 always does.
  return jax.random.uniform(key, ()) < prob


# ----------------------------------------------------------------------------
# Deterministic ops.
# ----------------------------------------------------------------------------


def adjust_brightness(image: jax.Array, delta: jax.Array | float) -> jax.Array:
  """``image + delta`` (TF/BYOL additive brightness; not clipped)."""
  return pix.adjust_brightness(image, delta)


def adjust_contrast(image: jax.Array, factor: jax.Array | float) -> jax.Array:
  """``factor * (image - m) + m`` with ``m`` the per-channel spatial mean (TF/BYOL)."""
  return pix.adjust_contrast(image, factor)


def _adjust_hsv(image: jax.Array, saturation_factor, hue_delta) -> jax.Array:
  """One RGB->HSV->RGB round trip: ``S <- clip(S * factor)``, ``H <- (H + delta) mod 1``."""
  hsv = pix.rgb_to_hsv(image)
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  return pix.hsv_to_rgb(jnp.stack(
      [(h + hue_delta) % 1.0, jnp.clip(s * saturation_factor, 0.0, 1.0), v], axis=-1))


def adjust_saturation(image: jax.Array, factor: jax.Array | float) -> jax.Array:
  """Scales HSV saturation by ``factor`` (clipped to [0, 1]); identity for C = 1."""
  if image.shape[-1] == 1:
    return image
  return _adjust_hsv(image, factor, 0.0)


def adjust_hue(image: jax.Array, delta: jax.Array | float) -> jax.Array:
  """Rotates HSV hue by ``delta`` (in turns, wrapped); identity for C = 1."""
  if image.shape[-1] == 1:
    return image
  return _adjust_hsv(image, 1.0, delta)


def to_grayscale(image: jax.Array) -> jax.Array:
  """Luma ``0.2989 R + 0.5870 G + 0.1140 B`` tiled to 3 channels; identity for C = 1."""
  if image.shape[-1] == 1:
    return image
  return pix.rgb_to_grayscale(image, keep_dims=True)


def solarize(image: jax.Array, threshold: float = 0.5) -> jax.Array:
  """``x if x < threshold else 1 - x``."""
  return pix.solarize(image, threshold)


def gaussian_kernel1d(sigma: jax.Array | float, radius: int) -> jax.Array:
  """Normalised taps ``exp(-x^2 / 2 sigma^2)``, ``x = -radius..radius``: ``[2 radius + 1]``."""
  x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  k = jnp.exp(-x**2 / (2.0 * jnp.asarray(sigma, jnp.float32)**2))
  return k / jnp.sum(k)


def gaussian_blur(image: jax.Array, sigma: jax.Array | float, *, radius: int,
                  padding: str = "zeros") -> jax.Array:
  """Separable Gaussian blur of one image ``[H, W, C]``.

  Args:
    image: ``[H, W, C]``.
    sigma: standard deviation in pixels (may be traced).
    radius: static kernel radius (``2 radius + 1`` taps).
    padding: ``'zeros'`` (BYOL's "SAME" convolution), ``'reflect'``
      (torchvision) or ``'edge'``.

  Returns:
    The blurred ``[H, W, C]`` image.
  """
  if padding not in _PADDINGS:
    raise ValueError(f"Unknown blur padding {padding!r}; use one of {sorted(_PADDINGS)}.")
  if radius <= 0:
    return image
  h, w, _ = image.shape
  if padding == "reflect" and radius >= min(h, w):
    raise ValueError(f"reflect padding needs radius < image side, got radius {radius} for "
                     f"{h}x{w}; use padding='zeros' or 'edge'.")
  k = gaussian_kernel1d(sigma, radius)
  mode = _PADDINGS[padding]
  # Shift-and-add over the static taps: cheap elementwise work under vmap.
  x = jnp.pad(image, ((radius, radius), (0, 0), (0, 0)), mode=mode)
  x = sum(k[i] * x[i:i + h] for i in range(2 * radius + 1))
  x = jnp.pad(x, ((0, 0), (radius, radius), (0, 0)), mode=mode)
  return sum(k[i] * x[:, i:i + w] for i in range(2 * radius + 1))


def normalize(image: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
  """``(image - mean) / std`` per channel (last axis)."""
  c = image.shape[-1]
  if len(mean) != c or len(std) != c:
    raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {c} channels.")
  return (image - jnp.asarray(mean, image.dtype)) / jnp.asarray(std, image.dtype)


def crop_box_from_uniforms(u: jax.Array, height: int, width: int, *,
                           scale: tuple[float, float] = (0.08, 1.0),
                           log_ratio: tuple[float, float] = _LOG_RATIO) -> jax.Array:
  """BYOL's single-sample crop box from four uniforms in [0, 1).

  ``A = U(scale) * H * W``, ``r = exp(U(log_ratio))``,
  ``w = min(round(sqrt(A r)), W)``, ``h = min(round(sqrt(A / r)), H)`` (at least 1),
  ``y0 = floor(u2 (H - h + 1))``, ``x0 = floor(u3 (W - w + 1))``
  (``byol/utils/dataset.py::_decode_and_random_crop``; ``round`` is half-to-even as in TF).

  Args:
    u: ``[4]`` uniforms (area, log-ratio, y offset, x offset).
    height: image height ``H`` (static).
    width: image width ``W`` (static).
    scale: range of the crop area as a fraction of ``H * W``.
    log_ratio: range of ``log(w / h)``.

  Returns:
    ``float32 [4]`` integer-valued ``(y0, x0, h, w)``.
  """
  area = (scale[0] + (scale[1] - scale[0]) * u[0]) * float(height * width)
  ratio = jnp.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
  w = jnp.clip(jnp.round(jnp.sqrt(area * ratio)), 1.0, float(width))
  h = jnp.clip(jnp.round(jnp.sqrt(area / ratio)), 1.0, float(height))
  y0 = jnp.minimum(jnp.floor(u[2] * (height - h + 1.0)), height - h)
  x0 = jnp.minimum(jnp.floor(u[3] * (width - w + 1.0)), width - w)
  return jnp.stack([y0, x0, h, w]).astype(jnp.float32)


def sample_crop_box(key: jax.Array, height: int, width: int, *,
                    scale: tuple[float, float] = (0.08, 1.0),
                    log_ratio: tuple[float, float] = _LOG_RATIO) -> jax.Array:
  """`crop_box_from_uniforms` on ``jax.random.uniform(key, [4])``."""
  return crop_box_from_uniforms(jax.random.uniform(key, (4,)), height, width, scale=scale,
                                log_ratio=log_ratio)


def resized_crop(image: jax.Array, box: jax.Array, *, output_size: int,
                 method: str = "bicubic", antialias: bool = False) -> jax.Array:
  """Crops ``box = (y0, x0, h, w)`` (may be traced) and resizes to a square.

  Implemented as one ``jax.image.scale_and_translate`` on the full image (no
  dynamic shapes): output pixel ``i`` samples input row
  ``y0 + (i + 0.5) h / S - 0.5`` (half-pixel centres, like TF2/PIL). Kernel taps
  that fall outside the image are dropped and the weights renormalised; taps
  outside the box but inside the image are used.

  Args:
    image: ``[H, W, C]``.
    box: ``[4]`` crop box in pixels.
    output_size: ``S``.
    method: ``'bicubic'`` (Keys, a = -0.5), ``'bilinear'``, ``'lanczos3'``, ``'lanczos5'``.
    antialias: widen the kernel when downsampling (PIL-like); BYOL/TF: False.

  Returns:
    ``[S, S, C]`` (not clipped; cubic kernels overshoot).
  """
  box = jnp.asarray(box, jnp.float32)
  scale = output_size / box[2:4]
  translation = -box[0:2] * scale
  return jax.image.scale_and_translate(
      image, (output_size, output_size, image.shape[-1]), (0, 1), scale, translation,
      method=_resize_method(method), antialias=antialias)


# ----------------------------------------------------------------------------
# Random ops: op(key, image, *, ...).
# ----------------------------------------------------------------------------


def random_resized_crop(key: jax.Array, image: jax.Array, *, output_size: int,
                        scale: tuple[float, float] = (0.08, 1.0),
                        log_ratio: tuple[float, float] = _LOG_RATIO, method: str = "bicubic",
                        antialias: bool = False) -> jax.Array:
  """BYOL random resized crop of one image to ``[output_size, output_size, C]``, clipped to [0, 1]."""
  _check_image(image, "random_resized_crop")
  h, w, _ = image.shape
  box = sample_crop_box(key, h, w, scale=scale, log_ratio=log_ratio)
  out = resized_crop(image, box, output_size=output_size, method=method, antialias=antialias)
  return jnp.clip(out, 0.0, 1.0)


def random_pad_crop(key: jax.Array, image: jax.Array, *, pad: int) -> jax.Array:
  """Zero-pads ``pad`` pixels on every side, then crops the original size at a random offset.

  The standard supervised CIFAR / Fashion-MNIST translation (torchvision
  ``RandomCrop(size, padding=pad)``): a shift of up to ``pad`` pixels each way.
  """
  _check_image(image, "random_pad_crop")
  h, w, c = image.shape
  top, left = jax.random.randint(key, (2,), 0, 2 * pad + 1)
  padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  return jax.lax.dynamic_slice(padded, (top, left, 0), (h, w, c))


def random_flip(key: jax.Array, image: jax.Array, *, prob: float = 0.5) -> jax.Array:
  """Left-right flip with probability ``prob``."""
  _check_image(image, "random_flip")
  return jnp.where(_bernoulli(key, prob), image[:, ::-1], image)


def apply_color_jitter(image: jax.Array, order: jax.Array, *,
                       brightness_delta: Optional[jax.Array] = None,
                       contrast_factor: Optional[jax.Array] = None,
                       saturation_factor: Optional[jax.Array] = None,
                       hue_delta: Optional[jax.Array] = None) -> jax.Array:
  """Deterministic jitter: the four ops in ``order``, each followed by a clip to [0, 1].

  Args:
    image: ``[H, W, C]`` in [0, 1].
    order: ``int [4]`` permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue).
    brightness_delta: additive delta; ``None`` skips the op (static).
    contrast_factor: contrast factor; ``None`` skips.
    saturation_factor: HSV saturation factor; ``None`` skips (always for C = 1).
    hue_delta: hue shift in turns; ``None`` skips (always for C = 1).

  Returns:
    ``[H, W, C]`` in [0, 1].
  """
  rgb = image.shape[-1] == 3
  use_s = rgb and saturation_factor is not None
  use_h = rgb and hue_delta is not None
  x = image
  for slot in range(4):
    op = order[slot]
    if brightness_delta is not None:
      x = jnp.where(op == 0, jnp.clip(adjust_brightness(x, brightness_delta), 0.0, 1.0), x)
    if contrast_factor is not None:
      x = jnp.where(op == 1, jnp.clip(adjust_contrast(x, contrast_factor), 0.0, 1.0), x)
    if use_s or use_h:
      # One HSV round trip serves both ops; the inactive one gets its identity.
      f_eff = jnp.where(op == 2, saturation_factor, 1.0) if use_s else 1.0
      d_eff = jnp.where(op == 3, hue_delta, 0.0) if use_h else 0.0
      active = ((op == 2) & use_s) | ((op == 3) & use_h)
      x = jnp.where(active, jnp.clip(_adjust_hsv(x, f_eff, d_eff), 0.0, 1.0), x)
  return x


def color_jitter(key: jax.Array, image: jax.Array, *, brightness: float = 0.4,
                 contrast: float = 0.4, saturation: float = 0.2, hue: float = 0.1,
                 prob: float = 0.8, shuffle: bool = True) -> jax.Array:
  """BYOL colour jitter, applied with probability ``prob``.

  Draws ``delta_b ~ U[-brightness, brightness]``, ``f_c ~ U[1 - contrast, 1 + contrast]``,
  ``f_s ~ U[1 - saturation, 1 + saturation]``, ``delta_h ~ U[-hue, hue]`` and applies the
  four ops (`apply_color_jitter`) in a random order when ``shuffle`` (else
  brightness, contrast, saturation, hue). A strength of 0 disables that op.
  For C = 1 saturation and hue are identities.

  Args:
    key: PRNG key.
    image: ``[H, W, C]`` in [0, 1].
    brightness: brightness strength (BYOL: 0.4).
    contrast: contrast strength (BYOL: 0.4).
    saturation: saturation strength (BYOL: 0.2).
    hue: hue strength in turns (BYOL: 0.1).
    prob: probability of jittering at all (BYOL: 0.8).
    shuffle: random op order (BYOL: True).

  Returns:
    ``[H, W, C]`` in [0, 1].
  """
  _check_image(image, "color_jitter")
  k_apply, k_perm, k_b, k_c, k_s, k_h = jax.random.split(key, 6)
  delta_b = jax.random.uniform(k_b, (), minval=-brightness, maxval=brightness)
  f_c = jax.random.uniform(k_c, (), minval=max(0.0, 1.0 - contrast), maxval=1.0 + contrast)
  f_s = jax.random.uniform(k_s, (), minval=max(0.0, 1.0 - saturation), maxval=1.0 + saturation)
  delta_h = jax.random.uniform(k_h, (), minval=-hue, maxval=hue)
  order = jax.random.permutation(k_perm, 4) if shuffle else jnp.arange(4)
  x = apply_color_jitter(image, order,
                         brightness_delta=delta_b if brightness > 0 else None,
                         contrast_factor=f_c if contrast > 0 else None,
                         saturation_factor=f_s if saturation > 0 else None,
                         hue_delta=delta_h if hue > 0 else None)
  return jnp.where(_bernoulli(k_apply, prob), x, image)


def random_grayscale(key: jax.Array, image: jax.Array, *, prob: float = 0.2) -> jax.Array:
  """`to_grayscale` with probability ``prob`` (identity for C = 1)."""
  _check_image(image, "random_grayscale")
  if image.shape[-1] == 1:
    return image
  return jnp.where(_bernoulli(key, prob), to_grayscale(image), image)


def blur_radius(image_size: int, blur_divider: float = 10.0) -> int:
  """BYOL's kernel radius: ``int(image_size / blur_divider / 2)`` (11 at 224, 1 at 32)."""
  return int(image_size / blur_divider / 2)


def random_gaussian_blur(key: jax.Array, image: jax.Array, *, prob: float = 1.0,
                         sigma_range: tuple[float, float] = (0.1, 2.0),
                         blur_divider: float = 10.0, padding: str = "zeros") -> jax.Array:
  """Gaussian blur with ``sigma ~ U[sigma_range]``, radius `blur_radius` (H), with probability ``prob``."""
  _check_image(image, "random_gaussian_blur")
  k_apply, k_sigma = jax.random.split(key)
  sigma = jax.random.uniform(k_sigma, (), minval=sigma_range[0], maxval=sigma_range[1])
  blurred = gaussian_blur(image, sigma, radius=blur_radius(image.shape[0], blur_divider),
                          padding=padding)
  return jnp.where(_bernoulli(k_apply, prob), blurred, image)


def random_solarize(key: jax.Array, image: jax.Array, *, prob: float = 1.0,
                    threshold: float = 0.5) -> jax.Array:
  """`solarize` with probability ``prob``."""
  _check_image(image, "random_solarize")
  return jnp.where(_bernoulli(key, prob), solarize(image, threshold), image)


# ----------------------------------------------------------------------------
# View configs and the batched entry points.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ViewConfig:
  """One view's augmentation recipe (hashable, so usable as a static jit argument).

  Defaults are BYOL's view 1 (``byol/utils/augmentations.py::augment_config``)
  except ``output_size``, which is required. Build from an ml_collections /
  dict config with ``ViewConfig.from_dict(cfg)``; ``to_dict()`` goes back.

  Attributes:
    output_size: side of the output view.
    crop_scale: random-resized-crop area range (fraction of the image);
      ``None`` resizes the whole image instead of cropping.
    crop_log_ratio: range of ``log(w / h)``.
    resize_method: ``'bicubic'`` (BYOL), ``'bilinear'``, ``'lanczos3'``, ``'lanczos5'``.
    antialias: antialias when the crop is downscaled (BYOL/TF: False).
    flip_prob: horizontal flip probability.
    jitter_prob: colour-jitter probability.
    brightness, contrast, saturation, hue: jitter strengths.
    jitter_shuffle: random jitter order.
    grayscale_prob: to-grayscale probability (no-op for C = 1).
    blur_prob: Gaussian-blur probability.
    blur_sigma: sigma range in pixels.
    blur_divider: kernel size ~ ``output_size / blur_divider``.
    blur_padding: ``'zeros'`` (BYOL), ``'reflect'`` or ``'edge'``.
    solarize_prob: solarisation probability.
    solarize_threshold: solarisation threshold.
    pad_crop: > 0: after the crop / resize, `random_pad_crop` with this padding.
  """

  output_size: int
  crop_scale: Optional[tuple[float, float]] = (0.08, 1.0)
  crop_log_ratio: tuple[float, float] = _LOG_RATIO
  resize_method: str = "bicubic"
  antialias: bool = False
  flip_prob: float = 0.5
  jitter_prob: float = 0.8
  brightness: float = 0.4
  contrast: float = 0.4
  saturation: float = 0.2
  hue: float = 0.1
  jitter_shuffle: bool = True
  grayscale_prob: float = 0.2
  blur_prob: float = 1.0
  blur_sigma: tuple[float, float] = (0.1, 2.0)
  blur_divider: float = 10.0
  blur_padding: str = "zeros"
  solarize_prob: float = 0.0
  solarize_threshold: float = 0.5
  pad_crop: int = 0

  def __post_init__(self):
    # Lists (from configs / JSON) -> tuples, so the config stays hashable.
    for name in ("crop_scale", "crop_log_ratio", "blur_sigma"):
      v = getattr(self, name)
      if v is not None:
        if len(v) != 2:
          raise ValueError(f"ViewConfig.{name} must have 2 entries, got {v!r}.")
        object.__setattr__(self, name, (float(v[0]), float(v[1])))
    if self.pad_crop < 0:
      raise ValueError(f"ViewConfig.pad_crop must be >= 0, got {self.pad_crop}.")
    if int(self.output_size) < 1:
      raise ValueError(f"ViewConfig.output_size must be positive, got {self.output_size}.")
    object.__setattr__(self, "output_size", int(self.output_size))
    for name in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"ViewConfig.{name} must be in [0, 1], got {getattr(self, name)}.")
    for name in ("brightness", "contrast", "saturation", "hue"):
      if getattr(self, name) < 0:
        raise ValueError(f"ViewConfig.{name} must be >= 0, got {getattr(self, name)}.")
    if self.hue > 0.5:
      raise ValueError(f"ViewConfig.hue must be <= 0.5 (a half turn), got {self.hue}.")
    if self.crop_scale is not None and not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
      raise ValueError(f"ViewConfig.crop_scale must satisfy 0 < lo <= hi <= 1, got "
                       f"{self.crop_scale}.")
    if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
      raise ValueError(f"ViewConfig.blur_sigma must satisfy 0 < lo <= hi, got {self.blur_sigma}.")
    _resize_method(self.resize_method)
    if self.blur_padding not in _PADDINGS:
      raise ValueError(f"ViewConfig.blur_padding must be one of {sorted(_PADDINGS)}, got "
                       f"{self.blur_padding!r}.")

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ViewConfig":
    """From a dict / ``ml_collections.ConfigDict`` (unknown keys raise ``ValueError``)."""
    d = dict(d.to_dict() if hasattr(d, "to_dict") else d)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"Unknown ViewConfig keys {sorted(unknown)}.")
    return cls(**d)


def byol_view_configs(output_size: int, *, dataset: Optional[str] = None) -> tuple[ViewConfig, ViewConfig]:
  """The asymmetric BYOL views (blur p 1.0 / 0.1, solarise p 0.0 / 0.2).

  For ``dataset in {'fashion_mnist', 'digits'}`` (small grayscale images) a
  lighter variant is returned instead:

  * crop area U[0.2, 1] instead of U[0.08, 1]: 8 % of 28x28 is an 8x8 patch,
    which rarely keeps a recognisable garment;
  * no saturation / hue / grayscale (identities on 1 channel anyway), so the
    jitter is brightness 0.4 and contrast 0.4 with p = 0.8;
  * blur p = 0.5 / 0.1 with 'reflect' padding: at 28 px BYOL's rule gives a
    3-tap kernel, and zero padding would darken a whole 1-pixel frame of a
    28-pixel image;
  * flip p = 0.5 and solarise p = 0.0 / 0.2 as in BYOL.

  Args:
    output_size: view side (BYOL: 224; CIFAR: 32; STL-10: 96; Fashion-MNIST: 28).
    dataset: optional dataset name selecting a variant.

  Returns:
    ``(view1, view2)``.
  """
  v1 = ViewConfig(output_size=output_size)
  v2 = dataclasses.replace(v1, blur_prob=0.1, solarize_prob=0.2)
  if dataset is not None and dataset.lower() in ("fashion_mnist", "digits"):
    light = dict(crop_scale=(0.2, 1.0), saturation=0.0, hue=0.0, grayscale_prob=0.0,
                 blur_padding="reflect")
    v1 = dataclasses.replace(v1, blur_prob=0.5, **light)
    v2 = dataclasses.replace(v2, blur_prob=0.1, **light)
  return v1, v2


# ----------------------------------------------------------------------------
# Paper recipes for small images and solo-learn / CorInfoMax (config.data.augmentation).
# ----------------------------------------------------------------------------

PIL_BLUR_RADIUS = 6  # ceil(3 * sigma_max) for sigma_max = 2: the Gaussian beyond 3 sigma is < 1.2 %.


def pil_blur_fields(output_size: int) -> dict[str, Any]:
  """`ViewConfig` blur fields that mimic PIL's ``ImageFilter.GaussianBlur(radius=sigma)``.

  solo-learn (``solo/data/pretrain_dataloader.py::GaussianBlur``) and the
  CorInfoMax code (``transform_utils.py::GaussianBlur``) blur with PIL, whose
  kernel width follows sigma (in pixels), not the image size, and which
  replicates edge pixels. BYOL's rule (radius ``int(S / 20)``) would give a
  3-tap kernel at 32 px, far too narrow for sigma up to 2. Here the radius is
  fixed at `PIL_BLUR_RADIUS` = 6 (13 taps) at every size, with ``'edge'``
  padding. PIL approximates the Gaussian with three box blurs; the exact
  Gaussian used here differs from it by 2e-3 to 5e-3 per pixel on
  average for sigma in [0.5, 2] (tested in tests/data/test_augment_presets.py).

  Args:
    output_size: the view side ``S`` (the blur runs after the crop).

  Returns:
    ``{'blur_divider': ..., 'blur_padding': 'edge'}`` for ``ViewConfig``.
  """
  # blur_radius(S, d) = int(S / d / 2) = int(R + 0.5) = R for d = S / (2R + 1).
  return {"blur_divider": output_size / (2 * PIL_BLUR_RADIUS + 1), "blur_padding": "edge"}


# name -> (view-1 fields, view-2 fields) on top of ViewConfig's BYOL defaults.
# "pil_blur" marks recipes that blur with PIL (see `pil_blur_fields`).
_PAPER_VIEWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # solo-learn scripts/pretrain/cifar/augmentations/asymmetric.yaml (BYOL, Barlow Twins).
    "cifar": ({"blur_prob": 0.0, "solarize_prob": 0.0},
              {"blur_prob": 0.0, "solarize_prob": 0.2}),
    # solo-learn .../{cifar,imagenet-100}/augmentations/symmetric.yaml (SimCLR).
    "simclr": ({"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2,
                "blur_prob": 0.5, "solarize_prob": 0.0, "pil_blur": True},) * 2,
    # solo-learn scripts/pretrain/cifar/vicreg.yaml (inline augmentations).
    "vicreg_cifar": ({"crop_scale": (0.2, 1.0), "blur_prob": 0.0, "solarize_prob": 0.1},) * 2,
    # solo-learn scripts/pretrain/imagenet-100/augmentations/vicreg.yaml.
    "vicreg_solo": ({"crop_scale": (0.2, 1.0), "blur_prob": 0.5, "solarize_prob": 0.1,
                     "pil_blur": True},) * 2,
    # W-MSE htdt/self-supervised cfg.py defaults + datasets/transforms.py::aug_transform
    # (CIFAR, STL-10, Tiny-ImageNet; every view the same transform).
    "wmse": ({"crop_scale": (0.2, 1.0), "saturation": 0.4, "grayscale_prob": 0.1,
              "blur_prob": 0.0, "solarize_prob": 0.0},) * 2,
    # solo-learn scripts/pretrain/cifar/wmse.yaml (inline augmentations).
    "wmse_solo": ({"crop_scale": (0.2, 1.0), "brightness": 0.8, "contrast": 0.8,
                   "saturation": 0.8, "hue": 0.2, "blur_prob": 0.0, "solarize_prob": 0.0},) * 2,
    # solo-learn scripts/pretrain/imagenet-100/augmentations/wmse.yaml (its 224 px crops).
    "wmse_solo_imagenet": ({"crop_scale": (0.2, 1.0), "brightness": 0.8, "contrast": 0.8,
                            "saturation": 0.8, "hue": 0.2, "blur_prob": 0.2,
                            "solarize_prob": 0.0, "pil_blur": True},) * 2,
    # MoCo v2 facebookresearch/moco main_moco.py --aug-plus.
    "moco_v2": ({"crop_scale": (0.2, 1.0), "saturation": 0.4, "blur_prob": 0.5,
                 "solarize_prob": 0.0, "pil_blur": True},) * 2,
    # CorInfoMax transform_utils.py::PretrainTransform (every dataset, blur even at 32 px).
    "corinfomax": ({"blur_prob": 1.0, "solarize_prob": 0.0, "pil_blur": True},
                   {"blur_prob": 0.1, "solarize_prob": 0.2, "pil_blur": True}),
}

PAPER_VIEW_PRESETS: tuple[str, ...] = tuple(_PAPER_VIEWS)


def paper_view_configs(name: str, output_size: int) -> tuple[ViewConfig, ViewConfig]:
  """The two views of a published recipe, by name.

  Every recipe starts from BYOL's view (random resized crop area U[0.08, 1],
  flip 0.5, jitter 0.4/0.4/0.2/0.1 with p 0.8, grayscale 0.2) and changes:

  =============  ==========================================  ==========  =========================
  name           source                                      blur p      other changes
  =============  ==========================================  ==========  =========================
  'cifar'        solo-learn CIFAR ``asymmetric.yaml``        0 / 0       solarise 0 / 0.2
                 (BYOL, Barlow Twins)
  'simclr'       solo-learn CIFAR and ImageNet-100           0.5 / 0.5   jitter 0.8/0.8/0.8/0.2,
                 ``symmetric.yaml`` (SimCLR)                 (PIL)       solarise 0
  'vicreg_cifar' solo-learn CIFAR ``vicreg.yaml``            0 / 0       crop U[0.2, 1],
                                                                         solarise 0.1 / 0.1
  'vicreg_solo'  solo-learn ImageNet-100 ``vicreg.yaml``     0.5 / 0.5   crop U[0.2, 1],
                                                             (PIL)       solarise 0.1 / 0.1
  'corinfomax'   CorInfoMax ``transform_utils.py``           1.0 / 0.1   solarise 0 / 0.2
                                                             (PIL)
  'wmse'         W-MSE ``htdt/self-supervised`` ``cfg.py``   0 / 0       crop U[0.2, 1], jitter
                 defaults (CIFAR, Tiny-ImageNet)                         0.4/0.4/0.4/0.1,
                                                                         grayscale 0.1
  'wmse_solo'    solo-learn CIFAR ``wmse.yaml``              0 / 0       crop U[0.2, 1], jitter
                                                                         0.8/0.8/0.8/0.2
  'moco_v2'      MoCo v2 ``main_moco.py --aug-plus``         0.5 / 0.5   crop U[0.2, 1], jitter
                                                             (PIL)       0.4/0.4/0.4/0.1
  'wmse_solo_    solo-learn ImageNet-100                     0.2 / 0.2   crop U[0.2, 1], jitter
  imagenet'      ``augmentations/wmse.yaml`` (224 px crops)  (PIL)       0.8/0.8/0.8/0.2
  =============  ==========================================  ==========  =========================

  BYOL's own ImageNet views (also VICReg's official ``augmentations.py`` and
  solo-learn's ImageNet-100 ``asymmetric.yaml``) are `byol_view_configs`
  (``'byol'``). "(PIL)" marks PIL-style blur (`pil_blur_fields`).

  Deviations from the torchvision pipelines of those repositories (shared by
  every preset, see the module docstring): the on-device crop is BYOL's single
  sample (torchvision's RandomResizedCrop retries up to 10 times, then falls
  back to a center crop, which the host crops of ImageNet do:
  `ssljax.data.crops`); brightness is additive and contrast uses the per-channel
  mean (TF / BYOL style; torchvision multiplies and uses the grey mean); the
  jitter order is random as in torchvision.

  Args:
    name: one of `PAPER_VIEW_PRESETS`.
    output_size: view side (CIFAR 32, Tiny-ImageNet 64, ImageNet 224).

  Returns:
    ``(view1, view2)``.

  Example:
    >>> v1, v2 = paper_view_configs('vicreg_cifar', 32)
    >>> v1.crop_scale, v1.solarize_prob, v1.blur_prob
    ((0.2, 1.0), 0.1, 0.0)
  """
  if name not in _PAPER_VIEWS:
    raise ValueError(f"Unknown augmentation preset {name!r}; use one of {list(PAPER_VIEW_PRESETS)} "
                     "(or 'byol' via byol_view_configs).")
  views = []
  for fields in _PAPER_VIEWS[name]:
    fields = dict(fields)
    if fields.pop("pil_blur", False):
      fields.update(pil_blur_fields(output_size))
    views.append(ViewConfig(output_size=output_size, **fields))
  return views[0], views[1]


def multicrop_view_configs(global_size: int, *, local_size: int, num_local: int,
                           num_global: int = 2,
                           global_scale: tuple[float, float] = (0.14, 1.0),
                           local_scale: tuple[float, float] = (0.05, 0.14)
                           ) -> tuple[ViewConfig, ...]:
  """SwAV's multi-crop views: ``num_global`` crops at ``global_size``, then ``num_local`` smaller ones.

  Official ``facebookresearch/swav`` ``src/multicropdataset.py`` with the
  ``main_swav.py`` ImageNet command (``--nmb_crops 2 6 --size_crops 224 96
  --min_scale_crops 0.14 0.05 --max_scale_crops 1. 0.14``): every crop is a
  random resized crop (area fraction in ``global_scale`` / ``local_scale``),
  flip 0.5, colour distortion s = 1 (jitter 0.8/0.8/0.8/0.2 with p 0.8,
  grayscale 0.2) and Gaussian blur with p 0.5, sigma ~ U[0.1, 2]; no
  solarisation. The global crops come first, as the loss kernels expect
  (`ssljax.losses.swav_loss`'s ``num_global_views``).

  Deviations: SwAV blurs with OpenCV's fixed 23x23 kernel (reflect-101
  borders) at every crop size; here the PIL-style 13-tap Gaussian with edge
  padding (`pil_blur_fields`), which fits 14-pixel local crops and holds the
  same Gaussian up to 3 sigma; plus those of every preset (`paper_view_configs`).

  Args:
    global_size: side of the global crops (the config's image size).
    local_size: side of the local crops (SwAV ImageNet: 96 for 224).
    num_local: number of local crops (SwAV ImageNet: 6).
    num_global: number of global crops (2).
    global_scale: crop area range of the global crops.
    local_scale: crop area range of the local crops.

  Returns:
    ``num_global + num_local`` view configs, the global ones first.

  Example:
    >>> views = multicrop_view_configs(224, local_size=96, num_local=6)
    >>> [v.output_size for v in views], views[2].crop_scale
    ([224, 224, 96, 96, 96, 96, 96, 96], (0.05, 0.14))
  """
  def crop(size, scale):
    return ViewConfig(output_size=size, crop_scale=scale, brightness=0.8, contrast=0.8,
                      saturation=0.8, hue=0.2, blur_prob=0.5, solarize_prob=0.0,
                      **pil_blur_fields(size))
  return ((crop(global_size, global_scale),) * num_global
          + (crop(local_size, local_scale),) * num_local)


def supervised_view_configs(output_size: int, *, pad: int = 2) -> tuple[ViewConfig, ViewConfig]:
  """The light supervised augmentation: random crop with ``pad``-pixel zero padding + flip.

  The usual supervised recipe for small images (e.g. torchvision
  ``RandomCrop(28, padding=2)`` + ``RandomHorizontalFlip()``); no colour,
  blur or scale changes. Two independent views, as every preset.

  Example:
    >>> v1, v2 = supervised_view_configs(28)
    >>> v1.pad_crop, v1.crop_scale, v1.flip_prob, v1.jitter_prob
    (2, None, 0.5, 0.0)
  """
  view = ViewConfig(output_size=output_size, crop_scale=None, pad_crop=pad, jitter_prob=0.0,
                    grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0)
  return view, view


def linear_probe_view_config(output_size: int) -> ViewConfig:
  """Training view of the linear probe: random resized crop + flip only (BYOL eval)."""
  return ViewConfig(output_size=output_size, jitter_prob=0.0, grayscale_prob=0.0,
                    blur_prob=0.0, solarize_prob=0.0)


_PROB_FIELDS = ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob")


def augment_image(key: jax.Array, image: jax.Array, config: ViewConfig,
                  probs: Optional[jax.Array] = None) -> jax.Array:
  """One view of one image: crop, flip, jitter, grayscale, blur, solarise, clip.

  Args:
    key: PRNG key.
    image: float32 ``[H, W, C]`` in [0, 1].
    config: the view's `ViewConfig` (static). An op is traced iff its
      probability in ``config`` is > 0.
    probs: optional (traced) ``[5]`` probabilities overriding ``config``'s
      (flip, jitter, grayscale, blur, solarise); used to share one traced graph
      between views that differ only in probabilities.

  Returns:
    float32 ``[S, S, C]`` in [0, 1], ``S = config.output_size`` (not normalised).
  """
  _check_image(image, "augment_image")
  if probs is None:
    probs = [getattr(config, f) for f in _PROB_FIELDS]
  p_flip, p_jit, p_gray, p_blur, p_sol = (probs[i] for i in range(5))
  k_crop, k_flip, k_jit, k_gray, k_blur, k_sol = jax.random.split(key, 6)
  k_pad = jax.random.fold_in(k_crop, 1)  # a seventh key without changing the six above
  s = config.output_size
  if config.crop_scale is not None:
    x = random_resized_crop(k_crop, image, output_size=s, scale=config.crop_scale,
                            log_ratio=config.crop_log_ratio, method=config.resize_method,
                            antialias=config.antialias)
  elif image.shape[:2] != (s, s):
    x = jnp.clip(jax.image.resize(image, (s, s, image.shape[-1]),
                                  _resize_method(config.resize_method),
                                  antialias=config.antialias), 0.0, 1.0)
  else:
    x = image
  if config.pad_crop > 0:
    x = random_pad_crop(k_pad, x, pad=config.pad_crop)
  if config.flip_prob > 0:
    x = random_flip(k_flip, x, prob=p_flip)
  if config.jitter_prob > 0:
    x = color_jitter(k_jit, x, brightness=config.brightness, contrast=config.contrast,
                     saturation=config.saturation, hue=config.hue, prob=p_jit,
                     shuffle=config.jitter_shuffle)
  if config.grayscale_prob > 0:
    x = random_grayscale(k_gray, x, prob=p_gray)
  if config.blur_prob > 0:
    x = random_gaussian_blur(k_blur, x, prob=p_blur, sigma_range=config.blur_sigma,
                             blur_divider=config.blur_divider, padding=config.blur_padding)
  if config.solarize_prob > 0:
    x = random_solarize(k_sol, x, prob=p_sol, threshold=config.solarize_threshold)
  return jnp.clip(x, 0.0, 1.0)


def _to_unit_float(images: jax.Array) -> jax.Array:
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


def augment_views(key: jax.Array, images: jax.Array, view_configs: Sequence[ViewConfig], *,
                  mean: Sequence[float], std: Sequence[float]) -> list[jax.Array]:
  """Augmented, normalised views of a batch (one independent key per example and view).

  View ``v`` of example ``i`` is `augment_image` with key
  ``split(split(key, V)[v], N)[i]``. Views whose configs differ only in their
  probabilities (BYOL's two views) are computed by ONE traced graph vmapped over
  the views with the probabilities as data, which halves compile time; the
  result equals running each view separately.

  Host-cropped views (``images`` of rank 5, ``[N, V, S, S, C]``, from the
  loader's ``host_crops``): view ``v`` starts from ``images[:, v]``, already
  randomly cropped and resized to ``S``, so the crop of its config is skipped
  (``crop_scale`` is ignored) and ``S`` must equal its ``output_size``.

  Args:
    key: PRNG key.
    images: ``uint8 [N, H, W, C]`` (or float in [0, 1]), C in {1, 3}; or
      host-cropped views ``uint8 [N, V, S, S, C]``.
    view_configs: one `ViewConfig` per view (static under jit).
    mean: per-channel mean in [0, 1] units.
    std: per-channel std in [0, 1] units.

  Returns:
    A list of float32 ``[N, S_v, S_v, C]``, ``(x - mean) / std``.
  """
  per_view = images.ndim == 5
  if images.ndim not in (4, 5) or images.shape[-1] not in (1, 3):
    raise ValueError(f"augment_views: expected images [N, H, W, C] or host-cropped views "
                     f"[N, V, S, S, C] with C in {{1, 3}}, got {images.shape}.")
  if per_view:
    sizes = [c.output_size for c in view_configs]
    if images.shape[1] != len(view_configs) or any(s != images.shape[2] for s in sizes):
      raise ValueError(f"augment_views: host-cropped views {images.shape} do not match the "
                       f"{len(view_configs)} view configs of sizes {sizes}.")
    # The crop happened on the host.
    view_configs = [dataclasses.replace(c, crop_scale=None) for c in view_configs]
  if len(mean) != images.shape[-1] or len(std) != images.shape[-1]:
    raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {images.shape[-1]} "
                     "channels.")
  x = _to_unit_float(images)
  n = images.shape[0]
  view_keys = jax.random.split(key, len(view_configs))
  # Group views by everything but their probabilities.
  groups: dict[ViewConfig, list[int]] = {}
  for v, cfg in enumerate(view_configs):
    groups.setdefault(dataclasses.replace(cfg, **{f: 0.0 for f in _PROB_FIELDS}), []).append(v)
  views: list[Optional[jax.Array]] = [None] * len(view_configs)
  for static, members in groups.items():
    cfgs = [view_configs[v] for v in members]
    # Trace an op if any view of the group uses it.
    template = dataclasses.replace(
        static, **{f: max(getattr(c, f) for c in cfgs) for f in _PROB_FIELDS})
    probs = jnp.asarray([[getattr(c, f) for f in _PROB_FIELDS] for c in cfgs], jnp.float32)

    def one_view(k, p, xv, template=template):
      keys = jax.random.split(k, n)
      return jax.vmap(lambda kk, im: augment_image(kk, im, template, p))(keys, xv)

    idx = jnp.asarray(members)
    if per_view:
      out = jax.vmap(one_view, in_axes=(0, 0, 1))(view_keys[idx], probs, x[:, idx])
    else:
      out = jax.vmap(one_view, in_axes=(0, 0, None))(view_keys[idx], probs, x)
    for j, v in enumerate(members):
      views[v] = normalize(out[j], mean, std)
  return views


def preprocess_eval(images: jax.Array, *, mean: Sequence[float], std: Sequence[float],
                    output_size: int, crop_fraction: Optional[float] = None,
                    method: str = "bicubic") -> jax.Array:
  """Deterministic eval view: center crop, resize, normalise.

  The center square has side ``round(crop_fraction * min(H, W))``; by default
  (``crop_fraction=None``) it is ``min(output_size, H, W)``, so a 256 host
  image gives the usual 224 center crop (= "resize 256, crop 224") and 32x32
  CIFAR images pass through unchanged. If the crop side differs from
  ``output_size`` it is resized with antialiasing (like PIL / torchvision).

  Args:
    images: ``uint8 [N, H, W, C]`` (or float in [0, 1]).
    mean: per-channel mean.
    std: per-channel std.
    output_size: output side ``S``.
    crop_fraction: center-crop side as a fraction of the short side.
    method: resize kernel when resizing.

  Returns:
    float32 ``[N, S, S, C]``.
  """
  if images.ndim != 4:
    raise ValueError(f"preprocess_eval: expected [N, H, W, C], got {images.shape}.")
  x = _to_unit_float(images)
  n, h, w, c = x.shape
  side = min(output_size, h, w) if crop_fraction is None else int(round(crop_fraction * min(h, w)))
  if not 1 <= side <= min(h, w):
    raise ValueError(f"crop_fraction={crop_fraction} gives a {side}-pixel crop of a {h}x{w} image.")
  top, left = (h - side) // 2, (w - side) // 2
  x = x[:, top:top + side, left:left + side]
  if side != output_size:
    x = jnp.clip(jax.image.resize(x, (n, output_size, output_size, c), _resize_method(method),
                                  antialias=True), 0.0, 1.0)
  return normalize(x, mean, std)
