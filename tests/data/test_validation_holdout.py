"""The validation split held out of the training split (`config.data.validation_holdout`)."""

import numpy as np
import pytest

from ssljax import errors
from ssljax.data import datasets
from ssljax.data import loader
from ssljax.train import setup as setup_lib
from configs.fashion_mnist import vicreg as vicreg_config


def test_holdout_splits_partition_the_training_split():
  info = datasets.with_validation_holdout(datasets.get_dataset_info("digits"), 297)
  assert (info.train_split, info.eval_split) == ("train[:1203]", "train[1203:]")
  fit_x, fit_y = loader.load_split_arrays("digits", info.train_split)
  val_x, val_y = loader.load_split_arrays("digits", info.eval_split)
  all_x, all_y = loader.load_split_arrays("digits", "train")
  assert (len(fit_x), len(val_x)) == (info.num_train, info.num_eval) == (1203, 297)
  np.testing.assert_array_equal(np.concatenate([fit_x, val_x]), all_x)
  np.testing.assert_array_equal(np.concatenate([fit_y, val_y]), all_y)
  # The held-out part never touches the test split, and has every class.
  test_x, _ = loader.load_split_arrays("digits", "test")
  assert not np.array_equal(val_x[:len(test_x)], test_x[:len(val_x)])
  assert set(np.unique(val_y)) == set(range(10))


def test_zero_is_the_identity_and_bad_sizes_are_rejected():
  info = datasets.get_dataset_info("fashion_mnist")
  assert datasets.with_validation_holdout(info, 0) is info
  for bad in (-1, 60000, 70000):
    with pytest.raises(ValueError, match="validation_holdout"):
      datasets.with_validation_holdout(info, bad)


@pytest.mark.parametrize("name", ["stl10", "imagenet100"])
def test_datasets_whose_splits_cannot_be_sliced_are_rejected(name):
  with pytest.raises(ValueError, match="not supported"):
    datasets.with_validation_holdout(datasets.get_dataset_info(name), 100)


def test_split_slice_reads_indices_and_rejects_percentages():
  assert datasets.split_slice("test") == ("test", slice(None))
  assert datasets.split_slice("train[10:-5]") == ("train", slice(10, -5))
  with pytest.raises(ValueError, match="integer record indices"):
    datasets.split_slice("train[:90%]")


def test_val_argument_holds_out_the_test_split_size_and_build_uses_it():
  config = vicreg_config.get_config("runlocal,val")
  assert config.data.validation_holdout == 10000
  run = setup_lib.build(config)
  assert (run.dataset.train_split, run.dataset.eval_split) == ("train[:50000]", "train[50000:]")
  assert run.steps_per_epoch == 50000 // config.data.batch_size


def test_holdout_with_an_image_folder_is_a_config_error(tmp_path):
  config = vicreg_config.get_config("runlocal,val")
  with config.unlocked():
    config.data.image_folder = str(tmp_path)
  with pytest.raises(errors.ConfigError, match="image_folder"):
    setup_lib.build(config)
