"""`evaluation.extract` on a mesh whose size does not divide the evaluation batch."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssljax import parallel
from ssljax.data import datasets
from ssljax.train import evaluation


def _embed(params, batch_stats, images):
  del params, batch_stats
  x = images.astype(jnp.float32).reshape(images.shape[0], -1)
  return jnp.stack([x.mean(1), x.std(1)], axis=1)


def test_batch_not_divisible_by_devices_gives_the_one_device_result():
  info = datasets.get_dataset_info("digits")
  data_cfg = ml_collections.ConfigDict({"name": "digits", "data_dir": None, "image_folder": None})
  embed = jax.jit(_embed)
  one = evaluation.extract(embed, None, None, data_cfg, info.eval_split,
                           mesh=parallel.make_data_mesh(jax.devices()[:1]), batch_size=100)
  assert len(jax.devices()) == 8  # conftest's fake devices; 100 is not a multiple of 8
  eight = evaluation.extract(embed, None, None, data_cfg, info.eval_split,
                             mesh=parallel.make_data_mesh(), batch_size=100)
  assert one[0].shape[0] == eight[0].shape[0] > 100
  np.testing.assert_array_equal(one[1], eight[1])
  np.testing.assert_allclose(one[0], eight[0], rtol=1e-6)
