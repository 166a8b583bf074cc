"""Tests of the published augmentation recipes (`augment.paper_view_configs`).

The expected values are written out from the recipe files themselves
(solo-learn ``scripts/pretrain/{cifar,imagenet-100}/...yaml``, CorInfoMax
``transform_utils.py``), not read back from `augment`, so a changed preset
fails here.

Tolerances: the PIL-style blur is compared with SciPy's exact Gaussian
(``ndimage.gaussian_filter``, float64, 'nearest' = edge padding) at 2e-6
(float32 kernel arithmetic); against PIL itself, which approximates the
Gaussian with three box blurs and rounds to uint8, only the mean absolute
difference is bounded (measured 0.002 to 0.005 for sigma in [0.5, 2]; bound
0.006), together with the check that BYOL's size rule is several times worse.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import ndimage

from ssljax import config as config_lib
from ssljax.data import augment as A
from ssljax.train import step as step_lib

# name -> [(view-1 fields), (view-2 fields)], from the recipe files.
_JITTER_04 = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.2, "hue": 0.1, "jitter_prob": 0.8}
EXPECTED = {
    "cifar": [  # solo-learn cifar/augmentations/asymmetric.yaml
        dict(crop_scale=(0.08, 1.0), blur_prob=0.0, solarize_prob=0.0, grayscale_prob=0.2,
             flip_prob=0.5, **_JITTER_04),
        dict(crop_scale=(0.08, 1.0), blur_prob=0.0, solarize_prob=0.2, grayscale_prob=0.2,
             flip_prob=0.5, **_JITTER_04)],
    "simclr": [  # solo-learn {cifar,imagenet-100}/augmentations/symmetric.yaml
        dict(crop_scale=(0.08, 1.0), brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
             jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.5, solarize_prob=0.0,
             flip_prob=0.5)] * 2,
    "vicreg_cifar": [  # solo-learn cifar/vicreg.yaml
        dict(crop_scale=(0.2, 1.0), blur_prob=0.0, solarize_prob=0.1, grayscale_prob=0.2,
             flip_prob=0.5, **_JITTER_04)] * 2,
    "vicreg_solo": [  # solo-learn imagenet-100/augmentations/vicreg.yaml
        dict(crop_scale=(0.2, 1.0), blur_prob=0.5, solarize_prob=0.1, grayscale_prob=0.2,
             flip_prob=0.5, **_JITTER_04)] * 2,
    "corinfomax": [  # CorInfoMax transform_utils.py PretrainTransform / transform_prime
        dict(crop_scale=(0.08, 1.0), blur_prob=1.0, solarize_prob=0.0, grayscale_prob=0.2,
             flip_prob=0.5, **_JITTER_04),
        dict(crop_scale=(0.08, 1.0), blur_prob=0.1, solarize_prob=0.2, grayscale_prob=0.2,
             flip_prob=0.5, **_JITTER_04)],
    "wmse": [  # htdt/self-supervised cfg.py defaults (--cj0..3, --gs_p, --crop_s0)
        dict(crop_scale=(0.2, 1.0), brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
             jitter_prob=0.8, grayscale_prob=0.1, blur_prob=0.0, solarize_prob=0.0,
             flip_prob=0.5)] * 2,
    "wmse_solo": [  # solo-learn cifar/wmse.yaml
        dict(crop_scale=(0.2, 1.0), brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
             jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.0, solarize_prob=0.0,
             flip_prob=0.5)] * 2,
    "wmse_solo_imagenet": [  # solo-learn imagenet-100/augmentations/wmse.yaml (224 px crops)
        dict(crop_scale=(0.2, 1.0), brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
             jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.2, solarize_prob=0.0,
             flip_prob=0.5)] * 2,
    "moco_v2": [  # facebookresearch/moco main_moco.py, augmentation for --aug-plus
        dict(crop_scale=(0.2, 1.0), brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
             jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.5, solarize_prob=0.0,
             flip_prob=0.5)] * 2,
}
PIL_BLUR = {"simclr", "vicreg_solo", "corinfomax", "wmse_solo_imagenet", "moco_v2"}


def test_presets_are_the_published_recipes():
  assert set(A.PAPER_VIEW_PRESETS) == set(EXPECTED)
  for name, expected in EXPECTED.items():
    for size in (32, 64, 224):
      views = A.paper_view_configs(name, size)
      assert len(views) == 2
      for view, fields in zip(views, expected):
        assert view.output_size == size
        assert view.resize_method == "bicubic" and view.blur_sigma == (0.1, 2.0), name
        for field, value in fields.items():
          assert getattr(view, field) == pytest.approx(value), (name, field)
        if name in PIL_BLUR:
          assert view.blur_padding == "edge"
          assert A.blur_radius(size, view.blur_divider) == 6, (name, size)


def test_unknown_preset_raises():
  with pytest.raises(ValueError, match="Unknown augmentation preset 'cifar10'"):
    A.paper_view_configs("cifar10", 32)


def test_view_presets_table_builds_every_preset():
  presets = step_lib.VIEW_PRESETS
  assert {"byol", "fashion_mnist", "none", *A.PAPER_VIEW_PRESETS} <= set(presets)
  for name in {"byol", "fashion_mnist", "none", *A.PAPER_VIEW_PRESETS}:
    views = step_lib.view_configs(ml_collections.ConfigDict({"image_size": 32, "augmentation": name}))
    assert len(views) == 2 and all(v.output_size == 32 for v in views), name
  with pytest.raises(ValueError, match="vicreg_cifar"):
    step_lib.view_configs(ml_collections.ConfigDict({"image_size": 32, "augmentation": "bogus"}))


@pytest.mark.parametrize("size", [8, 32, 64, 96, 224, 512])
def test_pil_blur_radius_is_size_independent(size):
  fields = A.pil_blur_fields(size)
  assert A.blur_radius(size, fields["blur_divider"]) == A.PIL_BLUR_RADIUS == 6


def _smooth_image(size, seed):
  base = np.random.default_rng(seed).random((size // 4, size // 4, 3))
  return np.clip(ndimage.zoom(base, (4, 4, 1), order=1), 0.0, 1.0)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
def test_pil_style_blur_is_the_exact_edge_padded_gaussian(sigma):
  img = _smooth_image(32, 1)
  got = A.gaussian_blur(jnp.asarray(img, jnp.float32), sigma, radius=6, padding="edge")
  # SciPy: radius = int(truncate * sigma + 0.5) = 6; 'nearest' replicates the edge.
  want = ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="nearest", truncate=6.0 / sigma)
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-6)


def test_pil_style_blur_is_close_to_pil():
  for size in (32, 64):
    u8 = (_smooth_image(size, 2) * 255).round().astype(np.uint8)
    x = jnp.asarray(u8 / 255.0, jnp.float32)
    for sigma in (0.5, 1.0, 2.0):
      pil = np.asarray(Image.fromarray(u8).filter(ImageFilter.GaussianBlur(radius=sigma))) / 255.0
      ours = np.asarray(A.gaussian_blur(x, sigma, radius=6, padding="edge"))
      byol = np.asarray(A.gaussian_blur(x, sigma, radius=A.blur_radius(size), padding="zeros"))
      err, err_byol = np.abs(ours - pil).mean(), np.abs(byol - pil).mean()
      assert err < 0.006, (size, sigma, err)
      assert err_byol > 2.5 * err, (size, sigma, err, err_byol)


@pytest.mark.parametrize("name,size", [("cifar", 32), ("simclr", 32), ("vicreg_cifar", 32),
                                       ("vicreg_solo", 24), ("corinfomax", 64)])
def test_presets_augment_a_batch(name, size):
  views = A.paper_view_configs(name, size)
  images = jnp.asarray(np.random.default_rng(3).integers(0, 256, (3, size, size, 3)), jnp.uint8)
  fn = jax.jit(lambda k, x: A.augment_views(k, x, views, mean=(0.5,) * 3, std=(0.25,) * 3))
  out = fn(jax.random.key(0), images)
  assert len(out) == 2
  for v in out:
    assert v.shape == (3, size, size, 3) and v.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(v)))
    # Normalised [0, 1] pixels: (x - 0.5) / 0.25 lies in [-2, 2].
    assert float(jnp.min(v)) >= -2.0 - 1e-5 and float(jnp.max(v)) <= 2.0 + 1e-5
  # Different keys per view: the two views differ.
  assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 0.0


def test_random_pad_crop_is_a_zero_filled_shift_of_at_most_pad():
  """Every output equals the image shifted by (dy, dx) in [-pad, pad]², zeros shifted in (NumPy)."""
  pad, size = 2, 9
  image = np.random.default_rng(0).random((size, size, 1)).astype(np.float32) + 0.5  # no zeros
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  shifts = {(dy, dx): padded[pad + dy:pad + dy + size, pad + dx:pad + dx + size]
            for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)}
  seen = set()
  for i in range(200):
    out = np.asarray(A.random_pad_crop(jax.random.key(i), jnp.asarray(image), pad=pad))
    match = [s for s, ref in shifts.items() if np.array_equal(out, ref)]
    assert len(match) == 1, i
    seen.add(match[0])
  assert len(seen) == (2 * pad + 1) ** 2  # every shift is reachable


def test_supervised_preset_is_pad_crop_and_flip_only():
  views = step_lib.view_configs(ml_collections.ConfigDict({"image_size": 28, "augmentation": "supervised"}))
  assert len(views) == 2
  for v in views:
    assert (v.output_size, v.crop_scale, v.pad_crop, v.flip_prob) == (28, None, 2, 0.5)
    assert v.jitter_prob == v.grayscale_prob == v.blur_prob == v.solarize_prob == 0.0
  x = jnp.asarray(np.random.default_rng(1).integers(0, 256, (4, 28, 28, 1)), jnp.uint8)
  out = A.augment_views(jax.random.key(0), x, views, mean=(0.5,), std=(0.25,))
  assert [o.shape for o in out] == [(4, 28, 28, 1)] * 2


def test_config_crop_scale_overrides_every_cropping_view_and_rejects_bad_ranges():
  from ssljax import configs_util, errors
  from ssljax.train import step as step_lib
  config = configs_util.load_config("configs/fashion_mnist/corinfomax.py", "runlocal")
  with config.unlocked():
    config.data.crop_scale = None  # the view preset's own range
  default = step_lib.view_configs(config.data)
  assert {v.crop_scale for v in default} == {(0.2, 1.0)}
  with config.unlocked():
    config.data.crop_scale = (0.5, 1.0)
  views = step_lib.view_configs(config.data)
  assert [v.crop_scale for v in views] == [(0.5, 1.0)] * len(default)
  # Nothing else of the preset changes.
  assert [dataclasses.replace(v, crop_scale=None) for v in views] == [
      dataclasses.replace(v, crop_scale=None) for v in default]
  for bad in ((0.0, 1.0), (0.6, 0.5), (0.5, 1.2)):
    with config.unlocked():
      config.data.crop_scale = bad
    with pytest.raises(errors.ConfigError, match="crop_scale"):
      step_lib.view_configs(config.data)
