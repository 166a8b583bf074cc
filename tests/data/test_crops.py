"""Host-side random resized crops: the box distribution, the fallback, and the decode path."""

from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest
from PIL import Image

from ssljax.data import crops
from ssljax.data.synthetic_jpegs import encode_jpeg, photo_like

LOG_R = (math.log(3 / 4), math.log(4 / 3))


def _keys(x, a):
  """Keys' cubic convolution kernel with parameter ``a`` (Keys, 1981, eq. 15)."""
  x = np.abs(x)
  return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                  np.where(x < 2, ((x - 5) * x + 8) * x * a - 4 * a, 0.0))


def _cubic_matrix(n_in, n_out, a, half_pixel=True):
  """``float64 [n_out, n_in]``: 4-tap cubic resampling, no antialiasing, edge pixels replicated."""
  i = np.arange(n_out)
  src = (i + 0.5) * (n_in / n_out) - 0.5 if half_pixel else i * (n_in / n_out)
  first = np.floor(src).astype(int)
  m = np.zeros((n_out, n_in))
  for k in range(-1, 3):
    np.add.at(m, (i, np.clip(first + k, 0, n_in - 1)), _keys(src - (first + k), a))
  return m


def _cubic_resize(image, out_h, out_w, a, half_pixel=True):
  """Float64 reference of a bicubic resize without antialiasing: ``[h, w, c] -> [oh, ow, c]``."""
  return np.einsum("oh,hwc,pw->opc", _cubic_matrix(image.shape[0], out_h, a, half_pixel),
                   image.astype(np.float64), _cubic_matrix(image.shape[1], out_w, a, half_pixel),
                   optimize=True)


def _as_uint8(x):
  return np.clip(np.round(x), 0, 255)


def _boxes(n, h, w, seed=0, **kw):
  rng = np.random.default_rng(seed)
  return np.array([crops.sample_crop_box(rng, h, w, **kw) for _ in range(n)])


def _expected_area_hist(h, w, scale, bins, attempts=10, grid=1500):
  """Area-fraction histogram implied by torchvision's rule, by integration (no rounding).

  One attempt draws a ~ U(scale), rho ~ U(log ratio) and is accepted iff the box fits;
  the first accepted attempt is distributed as (a, rho) conditioned on acceptance, and
  with probability q^attempts (q = rejection probability) the centre-crop fallback is used.
  """
  a = np.linspace(scale[0], scale[1], grid + 1)[:-1] + (scale[1] - scale[0]) / grid / 2
  rho = np.linspace(*LOG_R, grid + 1)[:-1] + (LOG_R[1] - LOG_R[0]) / grid / 2
  aa, rr = np.meshgrid(a, rho, indexing="ij")
  ok = (np.sqrt(aa * h * w * np.exp(rr)) <= w) & (np.sqrt(aa * h * w / np.exp(rr)) <= h)
  p_acc = ok.mean()
  cond = np.histogram(aa[ok], bins=bins)[0] / ok.sum()
  fall = (1 - p_acc) ** attempts
  in_ratio = w / h
  fh, fw = ((round(w / 0.75), w) if in_ratio < 0.75 else
            (h, round(h * 4 / 3)) if in_ratio > 4 / 3 else (h, w))
  fb = np.histogram([fh * fw / (h * w)], bins=bins)[0].astype(float)
  return (1 - fall) * cond + fall * fb, p_acc


@pytest.mark.parametrize("h,w,scale", [(375, 500, (0.08, 1.0)), (500, 500, (0.08, 1.0)),
                                       (333, 500, (0.2, 1.0)), (500, 375, (0.08, 0.5))])
def test_area_histogram_matches_torchvision_rule(h, w, scale):
  n = 20000
  b = _boxes(n, h, w, scale=scale)
  area = b[:, 2] * b[:, 3] / (h * w)
  bins = np.linspace(scale[0], scale[1], 11)
  bins[-1] += 1e-9
  got = np.histogram(area, bins=bins)[0] / n
  want, _ = _expected_area_hist(h, w, scale, bins)
  # Binomial std of a bin ~ sqrt(0.1 / 2e4) = 0.0022; rounding of h, w moves ~0.002.
  assert np.abs(got - want).max() < 0.012, (got.round(4), want.round(4))


def test_log_aspect_is_uniform_when_every_attempt_fits():
  # Area <= 0.5 of a square always fits for r in [3/4, 4/3]: first attempt accepted,
  # so log(w / h) ~ U[log 3/4, log 4/3] and area ~ U[0.08, 0.5] exactly (up to rounding).
  n = 20000
  b = _boxes(n, 1000, 1000, scale=(0.08, 0.5))
  log_r = np.log(b[:, 3] / b[:, 2])
  got = np.histogram(log_r, bins=np.linspace(*LOG_R, 11))[0] / n
  np.testing.assert_allclose(got, 0.1, atol=0.008)
  area = b[:, 2] * b[:, 3] / 1e6
  got = np.histogram(area, bins=np.linspace(0.08, 0.5, 11))[0] / n
  np.testing.assert_allclose(got, 0.1, atol=0.008)
  assert abs(area.mean() - 0.29) < 0.005


def test_crops_cover_the_whole_image_including_corners():
  h, w = 375, 500
  b = _boxes(20000, h, w)
  top, left, bh, bw = b.T
  assert (top >= 0).all() and (left >= 0).all()
  assert (top + bh <= h).all() and (left + bw <= w).all()
  # Offsets are uniform over every valid position, so a corner is covered with
  # probability 1 / ((h - bh + 1) (w - bw + 1)) given the box size.
  expected = (1.0 / ((h - bh + 1) * (w - bw + 1))).sum()
  for hit in [(top == 0) & (left == 0), (top == 0) & (left + bw == w),
              (top + bh == h) & (left == 0), (top + bh == h) & (left + bw == w)]:
    assert abs(hit.sum() - expected) < 4 * math.sqrt(expected) + 1, (hit.sum(), expected)
  assert expected > 5  # Corners do appear in views (~4e-4 per view here).
  # Every row and column of the image appears in some view.
  rows = np.zeros(h + 1, np.int64)
  np.add.at(rows, top, 1), np.add.at(rows, top + bh, -1)
  cols = np.zeros(w + 1, np.int64)
  np.add.at(cols, left, 1), np.add.at(cols, left + bw, -1)
  assert np.cumsum(rows)[:h].min() > 0 and np.cumsum(cols)[:w].min() > 0
  # The old centre-256 square of a 4:3 image never showed the outer eighths of the width.
  outer = (left < w // 8) | (left + bw > w - w // 8)
  assert outer.mean() > 0.5


@pytest.mark.parametrize("h,w,want", [(100, 1000, (0, 433, 100, 133)),   # Too wide: ratio 4/3.
                                      (1000, 100, (433, 0, 133, 100)),   # Too tall: ratio 3/4.
                                      (90, 100, (0, 0, 90, 100))])       # In range: whole image.
def test_fallback_is_the_centre_crop_with_clamped_ratio(h, w, want):
  assert crops.sample_crop_box(np.random.default_rng(1), h, w, attempts=0) == want
  if (h, w) != (90, 100):  # No box of the whole area fits: all 10 attempts fail.
    assert crops.sample_crop_box(np.random.default_rng(0), h, w, scale=(1.0, 1.0)) == want


def test_fallback_rate_matches_the_rejection_probability():
  # scale (0.9, 1) on a 1:4 image: a box of area >= 0.9 with ratio <= 4/3 never fits.
  b = _boxes(200, 100, 400, scale=(0.9, 1.0))
  assert (b == [0, 133, 100, 133]).all()
  # A 1:2 image with scale (0.4, 1): an attempt fits with probability p ~ 0.18, so
  # all 10 fail (-> centre crop 1000x1333) with probability (1 - p)^10 ~ 0.136.
  # (A large image, so that rounding w and h barely moves p.)
  n = 20000
  _, p_acc = _expected_area_hist(1000, 2000, (0.4, 1.0), np.linspace(0, 1, 2))
  rate = (1 - p_acc) ** 10
  b = _boxes(n, 1000, 2000, scale=(0.4, 1.0))
  got = (b == [0, 333, 1000, 1333]).all(axis=1).mean()
  assert abs(got - rate) < 4 * math.sqrt(rate * (1 - rate) / n), (got, rate)


def test_sampler_is_a_pure_function_of_the_generator():
  a = _boxes(50, 375, 500, seed=3)
  np.testing.assert_array_equal(a, _boxes(50, 375, 500, seed=3))
  assert not np.array_equal(a, _boxes(50, 375, 500, seed=4))
  with pytest.raises(ValueError, match="scale"):
    crops.sample_crop_box(np.random.default_rng(0), 10, 10, scale=(0.5, 0.1))


def test_decode_scale_keeps_every_view_at_least_the_output_size():
  assert crops.decode_scale([(0, 0, 448, 500)], 224) == 0.5
  assert crops.decode_scale([(0, 0, 500, 500), (0, 0, 300, 900)], 224) == 224 / 300
  assert crops.decode_scale([(0, 0, 10, 10)], 224) == 1.0  # Upsampled views: full scale.
  assert [crops.dct_factor(s) for s in (1.0, 0.6, 0.5, 0.3, 0.25, 0.2, 0.1)] == [1, 1, 2, 2, 4,
                                                                                 4, 8]


@pytest.mark.parametrize("decoder", ["simplejpeg", "pillow"])
def test_views_match_a_full_resolution_reference(decoder, monkeypatch):
  if decoder == "pillow":
    monkeypatch.setattr(crops, "_simplejpeg", None)
  else:  # the [test] extra installs simplejpeg: a missing decoder is a failure, not a skip
    assert crops._simplejpeg is not None, "pip install -e .[test] brings simplejpeg"  # pylint: disable=protected-access
  rng = np.random.default_rng(0)
  img = photo_like(rng, 480, 640)
  data = encode_jpeg(img, quality=95)
  full = Image.open(io.BytesIO(data)).convert("RGB")
  hc = [crops.HostCrop(48, resize="pillow"), crops.HostCrop(48, resize="pillow")]
  views = crops.decode_random_crops(data, hc, np.random.default_rng(5))
  assert views.shape == (2, 48, 48, 3) and views.dtype == np.uint8
  # Same draws as decode_random_crops made: boxes on the full image.
  r5 = np.random.default_rng(5)
  boxes = [crops.sample_crop_box(r5, 480, 640) for _ in range(2)]
  for v, (top, left, h, w) in enumerate(boxes):
    ref = np.asarray(full.resize((48, 48), Image.BICUBIC, box=(left, top, left + w, top + h)))
    # The reduced (DCT-scaled) decode differs from the full decode + antialiased resize
    # by a few grey levels on average.
    assert np.abs(views[v].astype(int) - ref).mean() < 4.0
  assert not np.array_equal(views[0], views[1])


@pytest.mark.parametrize("decoder", ["simplejpeg", "pillow"])
def test_views_at_full_decode_scale_are_exact(decoder, monkeypatch):
  """Boxes shorter than the view: full-scale decode, so each view is the reference resize of its box."""
  if decoder == "pillow":
    monkeypatch.setattr(crops, "_simplejpeg", None)
  img = photo_like(np.random.default_rng(0), 240, 320)
  data = encode_jpeg(img, quality=95)
  full = Image.open(io.BytesIO(data)).convert("RGB")
  for resize in crops.RESIZERS:
    hc = [crops.HostCrop(112, scale=(0.05, 0.1), resize=resize)] * 2
    views = crops.decode_random_crops(data, hc, np.random.default_rng(3))
    r3 = np.random.default_rng(3)
    boxes = [crops.sample_crop_box(r3, 240, 320, scale=(0.05, 0.1)) for _ in range(2)]
    assert crops.decode_scale(boxes, 112) == 1.0
    for v, (top, left, h, w) in enumerate(boxes):
      if resize == "opencv":  # OpenCV's INTER_CUBIC: Keys a = -0.75, fixed-point weights (+-1).
        ref = _as_uint8(_cubic_resize(np.asarray(full)[top:top + h, left:left + w], 112, 112,
                                      a=-0.75))
        assert np.abs(views[v] - ref).max() <= 1
      else:
        ref = np.asarray(full.resize((112, 112), Image.BICUBIC, box=(left, top, left + w, top + h)))
        np.testing.assert_array_equal(views[v], ref)


def test_opencv_views_at_reduced_scale_stay_close_to_a_full_decode():
  """The n/8 DCT-domain decode is the only difference from TF's full-size decode + resize."""
  img = photo_like(np.random.default_rng(0), 480, 640)
  data = encode_jpeg(img, quality=95)
  full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
  reduced = []
  for seed in range(6):
    views = crops.decode_random_crops(data, [crops.HostCrop(224)] * 2, np.random.default_rng(seed))
    r = np.random.default_rng(seed)
    boxes = [crops.sample_crop_box(r, 480, 640) for _ in range(2)]
    if crops.decode_scale(boxes, 224) == 1.0:
      continue
    for v, (top, left, h, w) in enumerate(boxes):
      ref = _as_uint8(_cubic_resize(full[top:top + h, left:left + w], 224, 224, a=-0.75))
      reduced.append(np.abs(views[v] - ref).mean())
  # Measured 2.5 to 3.1 grey levels on this photo-like image (noise sigma 6): the DCT-domain
  # scaling low-passes what the full-size 4-tap resize aliases. A wrong box mapping or decode
  # scale moves the content and gives > 10.
  assert len(reduced) >= 2 and max(reduced) < 4.0, reduced


def test_opencv_resize_is_keys_cubic_with_a_minus_075():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # white noise: kernels differ most
  box = (5, 3, 45, 33)  # x0, y0, x1, y1
  crop = img[3:33, 5:45]
  for out in (16, 30, 64):  # down, about equal, up
    got = crops.resize_box(img, box, out)
    assert got.shape == (out, out, 3) and got.dtype == np.uint8
    assert np.abs(got - _as_uint8(_cubic_resize(crop, out, out, a=-0.75))).max() <= 1
    # The check can tell kernels apart: TF2's Keys a = -0.5 differs by grey levels.
    assert np.abs(got - _as_uint8(_cubic_resize(crop, out, out, a=-0.5))).mean() > 2


@pytest.mark.parametrize("resize", ["opencv", "pillow"])
def test_views_are_deterministic_per_seed(resize):
  data = encode_jpeg(photo_like(np.random.default_rng(2), 300, 400))
  hc = [crops.HostCrop(64, resize=resize)] * 2
  a = crops.decode_random_crops(data, hc, np.random.default_rng(7))
  b = crops.decode_random_crops(data, hc, np.random.default_rng(7))
  c = crops.decode_random_crops(data, hc, np.random.default_rng(8))
  assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c) and not np.array_equal(a[0], a[1])


def test_tf_bicubic_kernels_named_in_the_docs():
  """BYOL's ``tf.image.resize`` is Keys a = -0.5 (half-pixel); SimCLR's TF1
  ``resize_bicubic`` is a = -0.75 without half-pixel centres (ssljax/data/crops.py).

  TF's outputs are stored (scripts/tf_bicubic_reference.py), so no TensorFlow is needed.
  """
  ref = np.load(os.path.join(os.path.dirname(__file__), "reference", "tf_bicubic.npz"))
  img = ref["image"]
  np.testing.assert_array_equal(  # the stored input is the generator's
      img, np.random.default_rng(0).integers(0, 256, (37, 53, 3)).astype(np.float32))
  for oh, ow in ((20, 30), (45, 64)):
    tf2, tf1 = ref[f"tf2/{oh}x{ow}"], ref[f"tf1/{oh}x{ow}"]
    # TF2 renormalises the weights at the border instead of replicating edge pixels: compare
    # the interior. TF tabulates the kernel (1024 samples per unit): measured <= 0.2 levels.
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(tf2 - _cubic_resize(img, oh, ow, a=-0.5))[inner].max() < 0.3
    assert np.abs(tf1 - _cubic_resize(img, oh, ow, a=-0.75, half_pixel=False)).max() < 0.3
    assert np.abs(tf2 - _cubic_resize(img, oh, ow, a=-0.75))[inner].max() > 5


def test_host_crop_from_view_config_and_validation():
  from ssljax.data import augment  # pylint: disable=g-import-not-at-top
  v = augment.ViewConfig(output_size=224, crop_scale=(0.2, 1.0))
  hc = crops.HostCrop.from_view_config(v)
  assert hc.size == 224 and hc.scale == (0.2, 1.0) and hc.interpolation == "bicubic"
  assert hc.resize == "opencv" and crops.HostCrop.from_view_config(v, "pillow").resize == "pillow"
  np.testing.assert_allclose(hc.ratio, (3 / 4, 4 / 3))
  with pytest.raises(ValueError, match="interpolation"):
    crops.HostCrop(224, interpolation="cubic-ish")
  with pytest.raises(ValueError, match="resize"):
    crops.HostCrop(224, resize="cv2")


def test_decode_resize_center_crop_matches_the_array_path():
  from ssljax.data import loader  # pylint: disable=g-import-not-at-top
  img = photo_like(np.random.default_rng(1), 60, 90)
  data = encode_jpeg(img)
  decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
  np.testing.assert_array_equal(crops.decode_resize_center_crop(data, 32),
                                loader.resize_short_side_center_crop(decoded, 32))


def test_host_resize_is_a_validated_config_choice():
  from ssljax import errors  # pylint: disable=g-import-not-at-top
  from ssljax.train import setup as setup_lib  # pylint: disable=g-import-not-at-top
  from configs.fashion_mnist import vicreg as vicreg_config  # pylint: disable=g-import-not-at-top
  config = vicreg_config.get_config("runlocal")
  assert config.data.host_resize in crops.RESIZERS
  config.data.host_resize = "cv2"
  with pytest.raises(errors.ConfigError, match="host_resize"):
    setup_lib.build(config)
