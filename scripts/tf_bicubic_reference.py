"""Writes tests/data/reference/tf_bicubic.npz: TensorFlow's two bicubic resizes on a fixed image.

`tests/data/test_crops.py::test_tf_bicubic_kernels_named_in_the_docs` checks
the claim in ``ssljax/data/crops.py`` (BYOL's TF2 ``tf.image.resize`` is Keys
a = -0.5 with half-pixel centres; SimCLR's TF1 ``resize_bicubic`` is a = -0.75
without them) against these stored outputs, so the test suite needs no
TensorFlow. Regenerate with the ``[tf]`` extra installed::

  pip install -e .[tf] && python scripts/tf_bicubic_reference.py

The input is ``default_rng(0).integers(0, 256, (37, 53, 3))`` as float32
(stored too); one downscale and one upscale.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "tests", "data", "reference", "tf_bicubic.npz")
SIZES = ((20, 30), (45, 64))


def main():
  img = np.random.default_rng(0).integers(0, 256, (37, 53, 3)).astype(np.float32)
  out = {"image": img, "meta/tensorflow": np.asarray(tf.__version__)}
  for oh, ow in SIZES:
    out[f"tf2/{oh}x{ow}"] = tf.image.resize(img, (oh, ow), "bicubic").numpy()
    out[f"tf1/{oh}x{ow}"] = tf.compat.v1.image.resize_bicubic(img[None], (oh, ow))[0].numpy()
  os.makedirs(os.path.dirname(OUT), exist_ok=True)
  np.savez_compressed(OUT, **out)
  print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB)")


if __name__ == "__main__":
  main()
