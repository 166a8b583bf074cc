"""Every config string loads, validates, and builds a train step (traced on abstract shapes).

Config strings: every one in ``experiments/paper_tables.md``, every file with
no argument, each file's ``:runlocal``, and the Fashion-MNIST ``:pid``
variants; then the common argument parser of `ssljax.presets.arguments` and
``python -m ssljax.main --print_config``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from ssljax import configs_util
from ssljax import parallel
from ssljax.train import setup as setup_lib

FILES = configs_util.config_files()
TABLE = os.path.join(configs_util.REPO_ROOT, "experiments", "paper_tables.md")


def _table_strings() -> list[str]:
  with open(TABLE, encoding="utf-8") as f:
    return re.findall(r"`(configs/[\w/]+\.py(?::[\w=,.]+)?)`", f.read())


STRINGS = list(dict.fromkeys(
    _table_strings() + FILES
    + [f"configs/fashion_mnist/{m}.py:pid" for m in ("simclr", "byol", "barlow_twins", "vicreg")]
    + [f"{f}:runlocal" for f in FILES]))


def is_variant(config_string: str) -> bool:
  """A string with an argument other than ``runlocal`` (a dataset, PID, encoder or size variant).

  The default run builds (validates) every string but traces the train step
  of each file's own recipe only (its no-argument string, and ``runlocal`` at
  small sizes); the programs of the variants are traced in the slow run
  (`test_variant_traces_a_train_step`): tracing one costs 3-6 s on an idle
  core whatever its sizes, and there are ~100.
  """
  _, _, arg = config_string.partition(":")
  return bool(arg) and arg != "runlocal"


def test_there_are_configs():
  assert len(FILES) >= 8 and len(STRINGS) >= 2 * len(FILES), STRINGS


# Train-step recipes already traced in this process, keyed by everything that
# shapes the traced program except the dataset's identity (CIFAR-10/100 and
# Tiny-ImageNet rows share recipes; tracing a ResNet-50 step takes ~5 s). A
# ``runlocal`` string is its file's program at smaller sizes: built and
# validated, but traced under its file's key (once).
_TRACED: set[str] = set()


def _recipe_key(config, info) -> str:
  parts = {k: config[k].to_dict() for k in ("model", "loss", "optim", "pid", "parallel")}
  parts["views"] = (config.data.image_size, config.data.augmentation, info.image_shape)
  return repr(sorted(parts.items()))


def _build(config_string):
  config = configs_util.load_config(config_string)
  run = setup_lib.build(config, mesh=parallel.make_data_mesh(jax.devices()[:1]), total_steps=100)
  return config, run


def is_imagenet(config_string: str) -> bool:
  """ImageNet-size strings (ResNet-50 / ViT at 224 px): traced by `tests/test_configs_imagenet.py`.

  A separate file, so that pytest-xdist's ``--dist loadfile`` can trace them
  on the other worker.
  """
  return config_string.startswith(("configs/imagenet/", "configs/imagenet100/"))


@pytest.mark.parametrize("config_string", [s for s in STRINGS if not is_imagenet(s)])
def test_config_builds_a_train_step(config_string):
  check_config_builds_a_train_step(config_string, trace=not is_variant(config_string))


@pytest.mark.slow
@pytest.mark.parametrize("config_string",
                         [s for s in STRINGS if is_variant(s) and not is_imagenet(s)])
def test_variant_traces_a_train_step(config_string):
  check_config_builds_a_train_step(config_string, trace=True)


def check_config_builds_a_train_step(config_string, *, trace: bool):
  """Loads, validates and builds ``config_string``; if ``trace``, traces its train step once per recipe."""
  config, run = _build(config_string)  # validates every field and builds the step
  assert config.is_locked, f"{config_string}: end get_config with presets.finish(c, a)"
  if not trace:
    return
  info = run.dataset
  path, _, arg = config_string.partition(":")
  key = _recipe_key(configs_util.load_config(path) if arg == "runlocal" else config, info)
  if key in _TRACED:
    return  # the same program (up to the label count or the sizes) was traced already
  _TRACED.add(key)
  state = jax.eval_shape(run.init_state, jax.random.key(0))
  batch = {"image": jax.ShapeDtypeStruct((16, *info.image_shape), jnp.uint8),
           "label": jax.ShapeDtypeStruct((16,), jnp.int32)}
  if config.pid.enabled:
    batch["pseudo_label"] = jax.ShapeDtypeStruct((16,), jnp.int32)
  new_state, metrics = jax.eval_shape(run.train_step, state, batch, jax.random.key(1))
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert metrics["loss"].shape == ()


@pytest.mark.parametrize("path", FILES)
def test_runlocal_is_one_shrink_that_keeps_the_recipe(path):
  full, small = configs_util.load_config(path), configs_util.load_config(path, "runlocal")
  assert (small.total_steps, small.data.batch_size, small.eval.linear_epochs) == (4, 32, 2), path
  assert small.data.image_size <= 64 and max(small.model.projector_hidden, default=0) <= 64, path
  kw = small.model.encoder_kwargs
  assert (kw.widths == (8, 16)) if small.model.encoder == "convnet" else kw.width == 8, path
  for key in ("loss", "optim", "pid"):
    assert small[key].to_dict() == full[key].to_dict(), (path, key)
  assert (small.data.name, small.data.augmentation) == (full.data.name, full.data.augmentation)
  assert configs_util.load_config(path, "epochs=3").num_epochs == 3.0, path


# ----------------------------------------------------------------------------
# The common arguments (ssljax.presets.arguments / finish).
# ----------------------------------------------------------------------------

BYOL = "configs/cifar10/byol.py"


def _load(arg):
  return configs_util.load_config(BYOL, arg).to_dict()


def test_arguments_compose_in_any_order():
  assert _load("pid,runlocal") == _load("runlocal,pid") == _load("runlocal,pid=true")
  assert _load("runlocal,epochs=2") == _load("epochs=2,runlocal")
  assert _load("pid=false") == _load("") == _load(None) == _load("dataset=cifar10")
  c = configs_util.load_config(BYOL, "dataset=tiny_imagenet,pid,epochs=50")
  assert (c.method, c.data.name, c.data.image_size, c.num_epochs) == (
      "byol+pid", "tiny_imagenet", 64, 50.0)
  # PID-SSL: warm-up and refresh every 10 % of the run (5 of 50 epochs) ...
  assert (c.pid.warmup_epochs, c.pid.refresh_every_epochs) == (5.0, 5.0)
  assert c.loss.terms.pid_unique.weight == 1.0 and c.loss.terms.byol.weight == 1.0
  # ... on the unchanged baseline: only the data, method and PID fields differ.
  base = configs_util.load_config(BYOL, "epochs=50").to_dict()
  d = c.to_dict()
  for key in ("data", "method", "pid", "loss"):
    base.pop(key), d.pop(key)
  assert d == base
  small = configs_util.load_config(BYOL, "runlocal,pid,dataset=cifar100")
  assert (small.total_steps, small.data.name, small.method) == (4, "cifar100", "byol+pid")


def test_unknown_argument_is_a_one_line_error():
  with pytest.raises(ValueError) as e:
    configs_util.load_config("configs/fashion_mnist/vicreg.py", "runlcal")
  assert str(e.value) == ("unknown config argument 'runlcal'; "
                          "valid: ['dataset', 'encoder', 'epochs', 'pid', 'runlocal', 'val']")
  with pytest.raises(ValueError, match=r"valid: \['dataset', 'encoder', 'epochs', 'estimator', 'pid'"):
    configs_util.load_config("configs/cifar10/vicreg_entropy.py", "estimater=logdet")
  with pytest.raises(ValueError, match="needs a value: epochs="):
    configs_util.load_config(BYOL, "epochs")
  with pytest.raises(ValueError, match="expected a float"):
    configs_util.load_config(BYOL, "epochs=many")
  with pytest.raises(ValueError, match="expected a boolean"):
    configs_util.load_config(BYOL, "pid=maybe")


def test_unsupported_dataset_is_a_one_line_error():
  with pytest.raises(ValueError) as e:
    configs_util.load_config("configs/cifar10/corinfomax.py", "dataset=cifar100")
  assert str(e.value) == ("config argument dataset='cifar100' is not supported by this config "
                          "file; valid: ['cifar10']")
  with pytest.raises(ValueError, match=r"valid: \['cifar10', 'cifar100', 'tiny_imagenet'\]$"):
    configs_util.load_config(BYOL, "dataset=imagenet100")


@pytest.mark.slow
def test_print_config_prints_the_overridden_config_and_exits():
  string = "configs/cifar10/vicreg.py:pid,runlocal,dataset=cifar100"
  out = subprocess.run(
      [sys.executable, "-m", "ssljax.main", f"--config={string}", "--print_config",
       "--config.seed=7", "--config.data.data_dir=/nonexistent"],
      cwd=configs_util.REPO_ROOT, capture_output=True, text=True, timeout=120, check=True)
  expected = configs_util.load_config(string)
  with expected.unlocked():
    expected.seed = 7
    expected.data.data_dir = "/nonexistent"
  assert json.loads(out.stdout) == json.loads(expected.to_json_best_effort())


def test_missing_config_file_lists_alternatives():
  with pytest.raises(FileNotFoundError, match="available"):
    configs_util.load_config("configs/fashion_mnist/nope.py")


def _table_module():
  import importlib.util
  import os
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "fashion_mnist_table.py")
  spec = importlib.util.spec_from_file_location("fashion_mnist_table", path)
  table = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(table)
  return table


def test_fashion_mnist_table_rows_load():
  """Every row and sweep point of experiments/fashion_mnist_table.py is a valid config of one recipe."""
  table = _table_module()
  demo = configs_util.load_config(table.DEMO_CONFIG)
  ssl_files = {f[:-3] for f in os.listdir(os.path.join(configs_util.REPO_ROOT, "configs",
                                                        "fashion_mnist"))}
  assert {row[1] for row in table.ROWS.values()} == ssl_files  # every config file has a row
  for key, (label, _, _, _, paths, values) in table.ROWS.items():
    recipe = table.recipe_config(key, val=False, quick=False)
    for lr_factor, coef in table.grid(key, quick=False):
      for val in (True, False):
        c = table.make_config(key, seed=1, total_steps=900, lr_factor=lr_factor, coef=coef,
                              val=val, quick=False)
        if val and lr_factor == 1.0 and coef == values[0]:
          setup_lib.build(c)  # loss-term keys, presets and optimiser resolve
        assert c.seed == 1 and c.total_steps == 900, label
        assert c.model.encoder_kwargs.widths == demo.model.encoder_kwargs.widths, label
        assert c.data.batch_size == demo.data.batch_size, label
        assert c.data.validation_holdout == (10000 if val else 0), label
        assert c.optim.base_lr == pytest.approx(recipe.optim.base_lr * lr_factor), label
        for path in paths:
          node = c
          for part in path.split("."):
            node = node[part]
          assert node == coef, (label, path)
        # warm-up: 10 % of this run, in epochs of its training split
        spe = (60000 - c.data.validation_holdout) // c.data.batch_size
        assert c.optim.warmup_epochs * spe == pytest.approx(90), label
    assert len(set(values)) == len(values) >= 2, label
