"""Tests of the on-device augmentations against independent NumPy / colorsys / PIL code.

Tolerances: the ops run in float32. Exact ops (flip, solarise, brightness) are
compared exactly or to 1 ulp-scale (1e-6); ops with reductions or HSV / kernel
arithmetic in float32 against float64 references use atol 2e-6 (contrast,
grayscale, blur, resize) and 1e-5 for HSV round trips (divisions by small
channel ranges amplify float32 rounding).
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from scipy.optimize import minimize_scalar

from ssljax.data import augment as A

LUMA = np.array([0.2989, 0.5870, 0.1140])


def _img(shape, seed=0):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


# ----------------------------------------------------------------------------
# Independent NumPy references (float64).
# ----------------------------------------------------------------------------


def np_contrast(x, f):
  m = x.mean(axis=(0, 1), keepdims=True)
  return f * (x - m) + m


def np_hsv_adjust(x, sat_factor=1.0, hue_delta=0.0):
  out = np.empty_like(x, dtype=np.float64)
  for i, j in itertools.product(range(x.shape[0]), range(x.shape[1])):
    h, s, v = colorsys.rgb_to_hsv(*x[i, j].astype(np.float64))
    out[i, j] = colorsys.hsv_to_rgb((h + hue_delta) % 1.0, min(max(s * sat_factor, 0.0), 1.0), v)
  return out


def np_gray(x):
  if x.shape[-1] == 1:
    return x.astype(np.float64)
  return np.repeat((x.astype(np.float64) @ LUMA)[..., None], 3, axis=-1)


def np_blur(x, sigma, radius, padding="zeros"):
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  k = np.exp(-t**2 / (2 * sigma**2))
  k /= k.sum()
  mode = {"zeros": "constant", "reflect": "reflect", "edge": "edge"}[padding]
  x = x.astype(np.float64)
  h, w = x.shape[:2]
  p = np.pad(x, ((radius, radius), (0, 0), (0, 0)), mode=mode)
  y = np.zeros_like(x)
  for r in range(h):
    y[r] = np.tensordot(k, p[r:r + 2 * radius + 1], axes=(0, 0))
  p = np.pad(y, ((0, 0), (radius, radius), (0, 0)), mode=mode)
  z = np.zeros_like(x)
  for c in range(w):
    z[:, c] = np.tensordot(p[:, c:c + 2 * radius + 1], k, axes=(1, 0))
  return z


def np_crop_box(u, height, width, scale, log_ratio):
  area = (scale[0] + (scale[1] - scale[0]) * u[0]) * height * width
  ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
  w = min(max(np.round(math.sqrt(area * ratio)), 1), width)
  h = min(max(np.round(math.sqrt(area / ratio)), 1), height)
  y0 = min(math.floor(u[2] * (height - h + 1)), height - h)
  x0 = min(math.floor(u[3] * (width - w + 1)), width - w)
  return np.array([y0, x0, h, w], np.float64)


def _keys_cubic(t, a=-0.5):
  t = np.abs(t)
  return np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1,
                  np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0))


def np_resized_crop_cubic(x, box, size):
  """Crop-resize without antialiasing: Keys cubic taps, out-of-image taps dropped + renormalised."""
  y0, x0, h, w = box

  def weights(start, length, n_in):
    m = np.zeros((size, n_in))
    for i in range(size):
      c = start + (i + 0.5) * length / size - 0.5
      for j in range(int(np.floor(c)) - 1, int(np.floor(c)) + 3):
        if 0 <= j < n_in:
          m[i, j] = _keys_cubic(c - j)
      m[i] /= m[i].sum()
    return m

  wy, wx = weights(y0, h, x.shape[0]), weights(x0, w, x.shape[1])
  return np.einsum("ai,ijc,bj->abc", wy, x.astype(np.float64), wx)


def np_jitter(x, order, b, c, s, h):
  x = x.astype(np.float64)
  for op in order:
    if op == 0 and b is not None:
      x = np.clip(x + b, 0, 1)
    elif op == 1 and c is not None:
      x = np.clip(np_contrast(x, c), 0, 1)
    elif op == 2 and s is not None and x.shape[-1] == 3:
      x = np.clip(np_hsv_adjust(x, sat_factor=s), 0, 1)
    elif op == 3 and h is not None and x.shape[-1] == 3:
      x = np.clip(np_hsv_adjust(x, hue_delta=h), 0, 1)
  return x


# ----------------------------------------------------------------------------
# Deterministic ops.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7, 3), (6, 4, 1)])
def test_brightness_contrast_solarize_flip(shape):
  x = _img(shape)
  np.testing.assert_array_equal(A.adjust_brightness(x, 0.25), x + np.float32(0.25))
  np.testing.assert_allclose(A.adjust_contrast(x, 1.3), np_contrast(x.astype(np.float64), 1.3),
                             atol=2e-6)
  np.testing.assert_array_equal(A.solarize(x), np.where(x < 0.5, x, 1 - x))
  np.testing.assert_array_equal(A.solarize(x, 0.3), np.where(x < 0.3, x, 1 - x))
  k_flip = next(k for k in jax.random.split(jax.random.key(0), 16)
                if jax.random.uniform(k, ()) < 0.5)
  np.testing.assert_array_equal(A.random_flip(k_flip, x), x[:, ::-1])


@pytest.mark.parametrize("factor", [0.0, 0.8, 1.2, 3.0])
def test_saturation_against_colorsys(factor):
  x = _img((4, 5, 3), seed=1)
  np.testing.assert_allclose(A.adjust_saturation(x, factor), np_hsv_adjust(x, sat_factor=factor),
                             atol=1e-5)


@pytest.mark.parametrize("delta", [-0.1, 0.05, 0.45, -0.5])
def test_hue_against_colorsys(delta):
  x = _img((4, 5, 3), seed=2)
  np.testing.assert_allclose(A.adjust_hue(x, delta), np_hsv_adjust(x, hue_delta=delta),
                             atol=1e-5)


def test_grayscale_against_numpy_and_single_channel_identities():
  x = _img((5, 6, 3), seed=3)
  g = np.asarray(A.to_grayscale(x))
  assert g.shape == (5, 6, 3)
  np.testing.assert_allclose(g, np_gray(x), atol=2e-6)
  x1 = _img((5, 6, 1), seed=3)
  for out in (A.to_grayscale(x1), A.adjust_saturation(x1, 1.7), A.adjust_hue(x1, 0.3)):
    np.testing.assert_array_equal(out, x1)


@pytest.mark.parametrize("padding", ["zeros", "reflect", "edge"])
@pytest.mark.parametrize("radius,sigma,shape", [(1, 0.5, (6, 7, 3)), (2, 1.7, (8, 5, 1)),
                                                (3, 2.0, (9, 9, 3))])
def test_gaussian_blur_against_numpy(padding, radius, sigma, shape):
  x = _img(shape, seed=radius)
  np.testing.assert_allclose(A.gaussian_blur(x, sigma, radius=radius, padding=padding),
                             np_blur(x, sigma, radius, padding), atol=2e-6)


def test_blur_radius_follows_byol():
  # kernel size = size / 10, radius = int(kernel_size / 2): 23 taps at 224.
  assert [A.blur_radius(s) for s in (224, 96, 32, 28, 8)] == [11, 4, 1, 1, 0]
  x = _img((8, 8, 1))
  np.testing.assert_array_equal(A.gaussian_blur(x, 1.0, radius=0), x)


@pytest.mark.parametrize("height,width,scale", [(32, 32, (0.08, 1.0)), (28, 28, (0.2, 1.0)),
                                                (20, 45, (0.08, 1.0)), (256, 256, (0.5, 0.9))])
def test_crop_box_against_numpy(height, width, scale):
  u = np.random.default_rng(height + width).random((300, 4)).astype(np.float32)
  log_ratio = (math.log(3 / 4), math.log(4 / 3))
  boxes = np.asarray(jax.vmap(lambda v: A.crop_box_from_uniforms(
      v, height, width, scale=scale, log_ratio=log_ratio))(jnp.asarray(u)))
  ref = np.stack([np_crop_box(v.astype(np.float64), height, width, scale, log_ratio) for v in u])
  np.testing.assert_array_equal(boxes, ref)
  y0, x0, h, w = boxes.T
  assert (y0 >= 0).all() and (x0 >= 0).all() and (y0 + h <= height).all() and (x0 + w <= width).all()
  assert (h >= 1).all() and (w >= 1).all()
  # Before clipping to the image the area fraction lies in `scale` (up to rounding).
  unclipped = (h < height) & (w < width)
  frac = (h * w / (height * width))[unclipped]
  assert frac.min() >= scale[0] * 0.7 and frac.max() <= scale[1] * 1.3


# Boxes (y0, x0, h, w) in a 20x17 image, resized to 9x9: upsampling, downsampling, mixed.
_BOXES = [(3, 2, 5, 7), (0, 0, 20, 17), (5, 4, 15, 13), (2, 6, 7, 3), (4, 1, 14, 16)]


@functools.lru_cache(maxsize=None)
def _resize_all_modes():
  """One compilation: every box x (bicubic, bilinear) x (antialias off, on)."""

  def f(img, boxes):
    return {(m, aa): jax.vmap(lambda b: A.resized_crop(img, b, output_size=9, method=m,
                                                       antialias=aa))(boxes)
            for m in ("bicubic", "bilinear") for aa in (False, True)}

  return jax.jit(f)


def test_resized_crop_against_pil():
  """PIL resizes a box of a float image with the same kernels; it always antialiases."""
  x = _img((20, 17), seed=5)
  out = _resize_all_modes()(jnp.asarray(x[..., None]), jnp.asarray(_BOXES, jnp.float32))
  for method, pil_method in (("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR)):
    for i, (y0, x0, h, w) in enumerate(_BOXES):
      ref = np.asarray(Image.fromarray(x, mode="F").resize(
          (9, 9), pil_method, box=(x0, y0, x0 + w, y0 + h)))
      np.testing.assert_allclose(out[method, True][i, ..., 0], ref, atol=2e-6)
      if h <= 9 and w <= 9:  # Upsampling: antialiasing changes nothing.
        np.testing.assert_allclose(out[method, False][i, ..., 0], ref, atol=2e-6)


def test_resized_crop_cubic_without_antialias_against_numpy():
  x = _img((20, 17, 3), seed=6)
  out = jax.jit(jax.vmap(lambda b: A.resized_crop(x, b, output_size=9)))(
      jnp.asarray(_BOXES, jnp.float32))
  for i, box in enumerate(_BOXES):
    np.testing.assert_allclose(out[i], np_resized_crop_cubic(x, box, 9), atol=2e-6)


def test_normalize():
  x = _img((3, 4, 3))
  mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
  np.testing.assert_allclose(A.normalize(x, mean, std), (x - np.array(mean)) / np.array(std),
                             atol=1e-6)
  with pytest.raises(ValueError, match="3 channels"):
    A.normalize(x, (0.5,), (0.2,))


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1), (1, 3, 0, 2)])
def test_apply_color_jitter_against_numpy(order):
  x = _img((5, 4, 3), seed=7)
  params = dict(brightness_delta=0.15, contrast_factor=1.35, saturation_factor=0.85,
                hue_delta=-0.07)
  got = A.apply_color_jitter(x, jnp.asarray(order), **params)
  np.testing.assert_allclose(got, np_jitter(x, order, 0.15, 1.35, 0.85, -0.07), atol=1e-5)
  # Disabled ops (None) are skipped.
  got = A.apply_color_jitter(x, jnp.asarray(order), brightness_delta=-0.2, hue_delta=0.3)
  np.testing.assert_allclose(got, np_jitter(x, order, -0.2, None, None, 0.3), atol=1e-5)
  # Grayscale input: brightness and contrast act on the channel, the rest are identities.
  x1 = _img((5, 4, 1), seed=8)
  got = A.apply_color_jitter(x1, jnp.asarray(order), **params)
  np.testing.assert_allclose(got, np_jitter(x1, order, 0.15, 1.35, None, None), atol=2e-6)


# ----------------------------------------------------------------------------
# Random ops.
# ----------------------------------------------------------------------------


def _keys(n, seed=0):
  return jax.random.split(jax.random.key(seed), n)


def test_random_flip_and_grayscale_probabilities():
  x = _img((4, 5, 3), seed=9)
  n = 400
  flips = np.asarray(jax.vmap(lambda k: A.random_flip(k, x, prob=0.5))(_keys(n)))
  is_flip = np.array([np.array_equal(f, x[:, ::-1]) for f in flips])
  is_id = np.array([np.array_equal(f, x) for f in flips])
  assert (is_flip ^ is_id).all() and 150 < is_flip.sum() < 250  # Binomial(400, .5): sd 10.
  grays = np.asarray(jax.vmap(lambda k: A.random_grayscale(k, x, prob=0.2))(_keys(n, 1)))
  is_gray = np.array([np.allclose(g, np_gray(x), atol=2e-6) for g in grays])
  is_id = np.array([np.array_equal(g, x) for g in grays])
  assert (is_gray ^ is_id).all() and 45 < is_gray.sum() < 115  # Binomial(400, .2): sd 8.
  x1 = _img((4, 5, 1))
  np.testing.assert_array_equal(A.random_grayscale(jax.random.key(0), x1, prob=1.0), x1)


def test_random_blur_is_a_blur_with_sigma_in_range():
  x = _img((10, 10, 3), seed=10)
  radius = A.blur_radius(10, 2.0)  # 2: a kernel of 5 taps on this tiny image.
  for k in _keys(4):
    out = np.asarray(A.random_gaussian_blur(k, x, prob=1.0, blur_divider=2.0))
    fit = minimize_scalar(lambda s: np.abs(np_blur(x, s, radius) - out).max(),
                          bounds=(0.05, 2.5), method="bounded", options={"xatol": 1e-7})
    assert fit.fun < 2e-5 and 0.1 - 1e-4 <= fit.x <= 2.0 + 1e-4
  np.testing.assert_array_equal(A.random_gaussian_blur(jax.random.key(1), x, prob=0.0), x)


def test_random_solarize():
  x = _img((4, 4, 3))
  np.testing.assert_array_equal(A.random_solarize(jax.random.key(0), x, prob=1.0), A.solarize(x))
  np.testing.assert_array_equal(A.random_solarize(jax.random.key(0), x, prob=0.0), x)


def test_random_resized_crop_composition():
  x = _img((12, 10, 3), seed=11)

  @jax.jit
  def both(key):
    box = A.sample_crop_box(key, 12, 10)
    ref = jnp.clip(A.resized_crop(x, box, output_size=8), 0, 1)
    return A.random_resized_crop(key, x, output_size=8), ref

  for key in _keys(3):
    out, ref = both(key)
    np.testing.assert_array_equal(out, ref)
    assert out.shape == (8, 8, 3) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_color_jitter_sampling():
  x = _img((6, 6, 3), seed=12)
  off = jax.jit(functools.partial(A.color_jitter, image=x, contrast=0.0, saturation=0.0,
                                  hue=0.0, prob=0.0))
  np.testing.assert_array_equal(off(jax.random.key(0)), x)
  # Brightness only: a constant shift in [-0.4, 0.4] on pixels that were not clipped.
  f = jax.jit(jax.vmap(functools.partial(A.color_jitter, image=x, brightness=0.4, contrast=0.0,
                                         saturation=0.0, hue=0.0, prob=1.0)))
  outs = np.asarray(f(_keys(8)))
  deltas = []
  for out in outs:
    inside = (out > 0) & (out < 1)
    d = (out - x)[inside]
    assert np.ptp(d) < 1e-6 and abs(d.mean()) <= 0.4
    deltas.append(d.mean())
  assert len(set(np.round(deltas, 6))) == 8  # Different keys, different draws.


# ----------------------------------------------------------------------------
# Configs and batched entry points.
# ----------------------------------------------------------------------------


def test_byol_view_configs():
  v1, v2 = A.byol_view_configs(224)
  for v in (v1, v2):
    assert v.output_size == 224 and v.crop_scale == (0.08, 1.0)
    assert v.crop_log_ratio == pytest.approx((math.log(3 / 4), math.log(4 / 3)))
    assert (v.jitter_prob, v.brightness, v.contrast, v.saturation, v.hue) == (0.8, 0.4, 0.4, 0.2, 0.1)
    assert v.grayscale_prob == 0.2 and v.flip_prob == 0.5 and v.blur_sigma == (0.1, 2.0)
    assert v.resize_method == "bicubic" and v.blur_padding == "zeros"
  assert (v1.blur_prob, v2.blur_prob) == (1.0, 0.1)
  assert (v1.solarize_prob, v2.solarize_prob) == (0.0, 0.2)
  f1, f2 = A.byol_view_configs(28, dataset="fashion_mnist")
  assert f1.crop_scale == (0.2, 1.0) and f1.saturation == f1.hue == f1.grayscale_prob == 0.0
  assert (f1.blur_prob, f2.blur_prob, f2.solarize_prob) == (0.5, 0.1, 0.2)
  assert hash(v1) != hash(v2)  # Hashable: usable as static jit arguments.


def test_view_config_dict_roundtrip_and_validation():
  v = A.ViewConfig(output_size=32)
  d = v.to_dict()
  d["crop_scale"] = [0.2, 1.0]  # Lists from JSON / ml_collections become tuples.
  w = A.ViewConfig.from_dict(d)
  assert w.crop_scale == (0.2, 1.0) and hash(w) == hash(dataclasses.replace(v, crop_scale=(0.2, 1.0)))
  import ml_collections
  assert A.ViewConfig.from_dict(ml_collections.ConfigDict(v.to_dict())) == v
  with pytest.raises(ValueError, match="Unknown ViewConfig keys"):
    A.ViewConfig.from_dict({"output_size": 8, "blur": 1})
  with pytest.raises(ValueError, match="blur_prob must be in"):
    A.ViewConfig(output_size=8, blur_prob=1.5)
  with pytest.raises(ValueError, match="crop_scale"):
    A.ViewConfig(output_size=8, crop_scale=(0.5, 0.2))
  with pytest.raises(ValueError, match="resize method"):
    A.ViewConfig(output_size=8, resize_method="nearest")


@functools.lru_cache(maxsize=None)
def _jitted_views(views):
  return jax.jit(lambda k, x, mean, std: A.augment_views(k, x, views, mean=mean, std=std),
                 static_argnums=(2, 3))


@pytest.mark.parametrize("channels,dataset", [(3, None), (1, "fashion_mnist")])
def test_augment_views_shapes_ranges_determinism(channels, dataset):
  views = A.byol_view_configs(8, dataset=dataset)
  mean, std = (0.5,) * channels, (0.25,) * channels
  f = _jitted_views(views)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (6, 12, 12, channels), dtype=np.uint8))
  a = f(jax.random.key(0), images, mean, std)
  b = f(jax.random.key(0), images, mean, std)
  c = f(jax.random.key(1), images, mean, std)
  assert len(a) == 2
  for v in a:
    assert v.shape == (6, 8, 8, channels) and v.dtype == jnp.float32
    assert float(v.min()) >= -2 - 1e-6 and float(v.max()) <= 2 + 1e-6  # (x - .5) / .25, x in [0, 1].
  for u, w in zip(a, b):
    np.testing.assert_array_equal(u, w)
  assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], a[1])
  # One independent key per example: identical inputs get different views.
  same = f(jax.random.key(2), jnp.broadcast_to(images[:1], images.shape), mean, std)[0]
  assert len({np.asarray(s).tobytes() for s in same}) == 6


def test_augment_views_key_plumbing_and_normalisation():
  """View v, example i uses key split(split(key, V)[v], N)[i]; then (x - mean) / std.

  The first two views differ only in probabilities (one shared graph), the third
  has another static config (its own graph): all must equal per-image `augment_image`.
  """
  v1 = A.linear_probe_view_config(6)
  views = (v1, dataclasses.replace(v1, flip_prob=1.0, solarize_prob=0.7),
           A.ViewConfig(output_size=10, crop_scale=None, jitter_prob=0, grayscale_prob=0,
                        blur_prob=0, flip_prob=1.0))
  images = np.random.default_rng(1).integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
  mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
  key = jax.random.key(5)

  @jax.jit
  def both(key, images):
    got = A.augment_views(key, images, views, mean=mean, std=std)
    x = images.astype(jnp.float32) / 255.0
    refs = [jax.vmap(lambda k, im, cfg=cfg: A.augment_image(k, im, cfg))(
        jax.random.split(vk, 3), x) for cfg, vk in zip(views, jax.random.split(key, 3))]
    return got, refs

  got, refs = both(key, jnp.asarray(images))
  for g, r, cfg in zip(got, refs, views):
    assert g.shape == (3, cfg.output_size, cfg.output_size, 3)
    np.testing.assert_allclose(g, (np.asarray(r) - mean) / np.array(std), atol=1e-5)
  # The third view is just a flip of the full image (independent check).
  np.testing.assert_allclose(got[2], (images[:, :, ::-1] / 255.0 - mean) / np.array(std),
                             atol=1e-5)


def test_augment_views_of_host_cropped_views():
  """[N, V, S, S, C] input: view v augments images[:, v] with the crop skipped."""
  v1 = A.ViewConfig(output_size=8, flip_prob=1.0, jitter_prob=0, grayscale_prob=0,
                    blur_prob=0)  # Crop (ignored) + flip.
  views = (v1, dataclasses.replace(v1, solarize_prob=1.0))  # One shared graph.
  images = np.random.default_rng(2).integers(0, 256, (3, 2, 8, 8, 3), dtype=np.uint8)
  mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
  got = jax.jit(lambda k, x: A.augment_views(k, x, views, mean=mean, std=std))(
      jax.random.key(0), jnp.asarray(images))
  x = images[:, :, :, ::-1] / 255.0
  x[:, 1] = np.where(x[:, 1] < 0.5, x[:, 1], 1.0 - x[:, 1])
  for v in range(2):
    np.testing.assert_allclose(got[v], (x[:, v] - mean) / np.array(std), atol=1e-5)
  with pytest.raises(ValueError, match="do not match"):
    A.augment_views(jax.random.key(0), jnp.asarray(images), A.byol_view_configs(16),
                    mean=mean, std=std)


def test_input_validation():
  with pytest.raises(ValueError, match=r"one image \[H, W, C\]"):
    A.random_flip(jax.random.key(0), jnp.zeros((2, 4, 4, 3)))
  with pytest.raises(ValueError, match="C in"):
    A.color_jitter(jax.random.key(0), jnp.zeros((4, 4, 2)))
  with pytest.raises(ValueError, match=r"images \[N, H, W, C\]"):
    A.augment_views(jax.random.key(0), jnp.zeros((4, 4, 3), jnp.uint8),
                    A.byol_view_configs(4), mean=(0.5,) * 3, std=(0.2,) * 3)
  with pytest.raises(ValueError, match="reflect padding needs radius"):
    A.gaussian_blur(jnp.zeros((3, 3, 1)), 1.0, radius=3, padding="reflect")


def test_preprocess_eval():
  rng = np.random.default_rng(2)
  big = rng.integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
  mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
  out = A.preprocess_eval(jnp.asarray(big), mean=mean, std=std, output_size=14)
  ref = (big[:, 1:15, 3:17] / 255.0 - np.array(mean)) / np.array(std)  # Center 14x14 crop.
  np.testing.assert_allclose(out, ref, atol=1e-5)
  same = rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
  out = A.preprocess_eval(jnp.asarray(same), mean=(0.5,), std=(0.5,), output_size=8)
  np.testing.assert_allclose(out, (same / 255.0 - 0.5) / 0.5, atol=1e-6)
  out = A.preprocess_eval(jnp.asarray(big), mean=mean, std=std, output_size=8,
                          crop_fraction=0.875)
  assert out.shape == (2, 8, 8, 3) and out.dtype == jnp.float32
  x = ((np.asarray(out) * np.array(std)) + np.array(mean))
  assert x.min() >= -1e-6 and x.max() <= 1 + 1e-6
