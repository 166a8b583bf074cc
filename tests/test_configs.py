"""Every config file loads, validates, and builds a train step (traced on abstract shapes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import config as config_lib
from ssljax import configs_util
from ssljax.data import datasets
from ssljax.train import network as network_lib
from ssljax.train import step as step_lib

CONFIGS = configs_util.config_files()


def test_there_are_configs():
  assert len(CONFIGS) >= 8, CONFIGS


# Train-step recipes already traced in this process, keyed by everything that
# shapes the traced program except the dataset's identity (CIFAR-10/100 and
# Tiny-ImageNet rows share recipes; tracing a ResNet-50 step takes ~5 s).
_TRACED: set[str] = set()


def _recipe_key(config, info) -> str:
  parts = {k: config[k].to_dict() for k in ("model", "loss", "optim", "pid", "parallel")}
  parts["views"] = (config.data.image_size, config.data.augmentation, info.image_shape)
  return repr(sorted(parts.items()))


@pytest.mark.parametrize("path", CONFIGS)
def test_config_builds_a_train_step(path):
  config = configs_util.load_config(path)
  assert config.is_locked, f"{path}: call config_lib.finalize(c) at the end of get_config"
  info = datasets.get_dataset_info(config.data.name)
  with config.unlocked():
    if config.data.num_classes < 0:
      config.data.num_classes = info.num_classes
  config_lib.validate(config, num_devices=1)
  net = network_lib.build_from_config(config)
  tx, _ = step_lib.make_optimizer(config, steps_per_epoch=10, total_steps=100)
  key = _recipe_key(config, info)
  if key in _TRACED:
    return  # the same program (up to the label count) was traced for an earlier file
  _TRACED.add(key)
  view = (config.data.image_size, config.data.image_size, info.image_shape[-1])
  state = jax.eval_shape(lambda k: step_lib.init_train_state(
      config, net, tx, k, view, num_classes=config.data.num_classes), jax.random.key(0))
  train_step = step_lib.make_train_step(config, net, tx, mean=info.mean, std=info.std,
                                        total_steps=100)
  batch = {"image": jax.ShapeDtypeStruct((4, *info.image_shape), jnp.uint8),
           "label": jax.ShapeDtypeStruct((4,), jnp.int32)}
  if config.pid.enabled:
    batch["pseudo_label"] = jax.ShapeDtypeStruct((4,), jnp.int32)
  new_state, metrics = jax.eval_shape(train_step, state, batch, jax.random.key(1))
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert metrics["loss"].shape == ()


def test_runlocal_variants_are_small():
  for path in CONFIGS:
    if "fashion_mnist" not in path:
      continue
    c = configs_util.load_config(path, "runlocal")
    assert 0 < c.total_steps <= 20 and c.data.batch_size <= 128, path


def test_config_argument_typos_are_rejected():
  with pytest.raises(ValueError, match="unknown config argument 'runlcal'"):
    configs_util.load_config("configs/fashion_mnist/vicreg.py", "runlcal")


def test_missing_config_file_lists_alternatives():
  with pytest.raises(FileNotFoundError, match="available"):
    configs_util.load_config("configs/fashion_mnist/nope.py")


def test_fashion_mnist_table_rows_load():
  """Every row of experiments/fashion_mnist_table.py resolves to a valid config."""
  import importlib.util
  import os
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "fashion_mnist_table.py")
  spec = importlib.util.spec_from_file_location("fashion_mnist_table", path)
  table = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(table)
  ids = set()
  for label, method, arg in table.TRAINED_ROWS:
    c = table.make_config(method, arg, seed=1, epochs=2.0, quick=False)
    assert c.seed == 1 and c.model.encoder_kwargs.widths == (32, 64, 128), label
    assert c.num_epochs == 2.0 and c.data.batch_size == 256, label
    ids.add(table.row_id(label))
  assert len(ids) == len(table.TRAINED_ROWS)  # distinct run directories
