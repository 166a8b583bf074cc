"""What pods and people do to a run, through the real CLI (issue: runs that survive them).

Every case runs ``python -m ssljax.main`` in a subprocess on the Fashion-MNIST
smoke config and checks what a user sees: one ``error:`` line and exit status
2 for mistakes, an exclusive workdir, resumes that validate before they
write, fall-back over damaged checkpoints, and no NaN/Inf ever checkpointed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time

import numpy as np
import pytest

from tests.reliability import cli

pytestmark = pytest.mark.slow

# 6 steps, a checkpoint every 2 (3 kept), small evaluation: ~15 s per run on 2 cores.
FAST = ("--config.total_steps=6", "--config.checkpoint.every_steps=2", "--config.checkpoint.keep=3",
        "--config.eval.plots=False", "--config.eval.pixel_baseline=False")


def _config_file(tmp_path, body: str) -> str:
  path = tmp_path / "cfg.py"
  path.write_text("from ssljax import configs_util\n\n"
                  "def get_config(arg=None):\n"
                  f"  c = configs_util.load_config({cli.SMOKE!r})\n"
                  "  with c.unlocked():\n"
                  f"    {body}\n"
                  "  return c\n")
  return str(path)


def _no_duplicate_records(workdir):
  seen = set()
  for r in cli.metrics(workdir):
    key = (r["step"], tuple(sorted(r)))
    assert key not in seen, f"step {r['step']} logged twice"
    seen.add(key)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A completed 6-step run (checkpoints at steps 2, 4, 6)."""
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  proc = cli.run(workdir, *FAST)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def _copy(finished, tmp_path):
  dst = str(tmp_path / "run")
  shutil.copytree(finished, dst)
  return dst


@pytest.mark.parametrize("flags,fragments", [
    (("--config.optim.learnig_rate=0.1",), ("learnig_rate", "--print_config")),
    (("--config.optim.base_lr=abc",), ("base_lr", "abc")),
    (("--config.data.name=imagenet_typo",), ("imagenet_typo",)),
])
def test_bad_flags_are_one_line_errors(tmp_path, flags, fragments):
  proc = cli.run(str(tmp_path / "run"), *flags)
  cli.assert_one_line_error(proc, *fragments)
  assert not os.path.exists(tmp_path / "run" / "config.json")


def test_missing_config_file_and_bad_argument(tmp_path):
  cli.assert_one_line_error(cli.run(str(tmp_path), config="configs/fashion_mnist/nope.py"),
                            "no config file")
  cli.assert_one_line_error(cli.run(str(tmp_path), config="configs/fashion_mnist/vicreg.py:fast"),
                            "fast")


@pytest.mark.parametrize("body,fragments", [
    ("c.loss.terms = {'vicreg': {'weight': 'one'}}", ("config.loss.terms.vicreg.weight", "number")),
    ("c.loss.terms = {'vicrg': {}}", ("vicrg", "expected one of")),
])
def test_bad_loss_terms_name_the_field(tmp_path, body, fragments):
  proc = cli.run(str(tmp_path / "run"), config=_config_file(tmp_path, body))
  cli.assert_one_line_error(proc, *fragments)


def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  cli.assert_one_line_error(cli.run(str(path)), "not a directory")


def test_evaluate_without_checkpoints(tmp_path):
  cli.assert_one_line_error(cli.run(str(tmp_path), "--mode=evaluate"), "no checkpoints")


def test_second_run_on_a_workdir_refuses_and_names_the_first(tmp_path):
  workdir = str(tmp_path / "run")
  first = cli.start(workdir, *FAST[1:], "--config.total_steps=40")
  try:
    lock = os.path.join(workdir, ".lock")
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(lock) and os.path.getsize(lock)):
      time.sleep(0.2)
    t = time.time()
    second = cli.run(workdir, *FAST)
    refused_after = time.time() - t
    cli.assert_one_line_error(second, "in use by another run", f"pid {first.pid}")
    out, err = first.communicate(timeout=600)
  finally:
    if first.poll() is None:
      first.kill()
  assert first.returncode == 0, err[-3000:]
  assert refused_after < 10, refused_after  # the check runs before JAX and the data load
  _no_duplicate_records(workdir)


def test_update_that_overflows_the_state_is_never_checkpointed(tmp_path):
  """SGD with lr 1e10 and a loss weight 1e30 overflows parameters in a finite-gradient step."""
  workdir = str(tmp_path / "run")
  body = ("c.optim.name = 'sgd'; c.optim.base_lr = 1e10; c.optim.lr_scaling = 'none'; "
          "c.optim.warmup_epochs = 0.0; c.loss.terms.vicreg.weight = 1e30")
  proc = cli.run(workdir, *FAST, config=_config_file(tmp_path, body))
  line = cli.assert_one_line_error(proc, "NaN/Inf")
  assert "finite values" in line or "no checkpoint was written" in line
  import orbax.checkpoint as ocp
  for state_dir in glob.glob(os.path.join(workdir, "checkpoints", "*", "state")):
    tree = ocp.StandardCheckpointer().restore(os.path.abspath(state_dir))
    import jax
    for leaf in jax.tree.leaves(tree):
      leaf = np.asarray(leaf)
      if np.issubdtype(leaf.dtype, np.floating):
        assert np.all(np.isfinite(leaf)), state_dir


def test_rerun_of_a_finished_run_prints_its_results(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  proc = cli.run(workdir, *FAST)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "is complete (step 6)" in proc.stderr
  assert "results: " + os.path.join(workdir, "results.json") in proc.stdout
  _no_duplicate_records(workdir)


def test_evaluate_prints_the_file_it_wrote(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  proc = cli.run(workdir, *FAST, "--mode=evaluate")
  assert proc.returncode == 0, proc.stderr[-3000:]
  path = os.path.join(workdir, "eval_results_6.json")
  assert f"results: {path}" in proc.stdout and os.path.exists(path)


def test_evaluate_on_a_transfer_dataset(finished, tmp_path):
  """``--mode=evaluate --config.eval.dataset=NAME``: the Fashion-MNIST run probed on digits."""
  workdir = _copy(finished, tmp_path)
  proc = cli.run(workdir, *FAST, "--mode=evaluate", "--config.eval.dataset=digits")
  assert proc.returncode == 0, proc.stderr[-3000:]
  path = os.path.join(workdir, "eval_results_6_digits.json")
  assert f"results: {path}" in proc.stdout and os.path.exists(path)
  with open(path) as f:
    results = json.load(f)
  keys = {k for k in results if k.startswith("eval/")}
  assert keys == {"eval/transfer/digits/knn/top1", "eval/transfer/digits/linear/top1"}, keys
  for k in keys:   # 10 classes: above chance on images the encoder never saw
    assert results[k] > 0.2, (k, results[k])
  assert not os.path.exists(os.path.join(workdir, "eval_results_6.json"))


def test_changed_model_is_refused_before_anything_is_written(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  before = open(os.path.join(workdir, "config.json")).read()
  proc = cli.run(workdir, *FAST, "--config.model.projector_dim=16")
  cli.assert_one_line_error(proc, "model.projector_dim", "new --workdir")
  assert open(os.path.join(workdir, "config.json")).read() == before


def test_safe_change_resumes_and_says_so(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  proc = cli.run(workdir, *FAST[1:], "--config.total_steps=8")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "resumed from step 6 of 8" in proc.stderr
  assert "changed on resume (safe): total_steps: 6 -> 8" in proc.stderr
  assert json.load(open(os.path.join(workdir, "config.json")))["total_steps"] == 8
  _no_duplicate_records(workdir)


def test_damaged_latest_checkpoint_falls_back_to_the_previous(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  state_files = [f for f in glob.glob(os.path.join(workdir, "checkpoints", "6", "state", "**"),
                                      recursive=True) if os.path.isfile(f)]
  for f in state_files:  # truncate every array file of the latest checkpoint
    with open(f, "r+b") as fh:
      fh.truncate(max(os.path.getsize(f) // 3, 1))
  proc = cli.run(workdir, *FAST, "--mode=evaluate")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "checkpoint step 6" in proc.stderr and "is damaged" in proc.stderr
  assert "newest intact checkpoint, step 4" in proc.stderr


def test_garbage_iterator_state_falls_back_and_resumes(finished, tmp_path):
  workdir = _copy(finished, tmp_path)
  for f in glob.glob(os.path.join(workdir, "checkpoints", "6", "data", "*")):
    if os.path.isfile(f):
      open(f, "w").write("{not json")
  proc = cli.run(workdir, *FAST[1:], "--config.total_steps=8")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "checkpoint step 6" in proc.stderr and "resumed from step 4 of 8" in proc.stderr
  assert os.listdir(os.path.join(workdir, "checkpoints_damaged"))  # kept aside, not deleted
  _no_duplicate_records(workdir)


def test_run_plots_help_and_missing_metrics(tmp_path):
  proc = cli.run(None, "--help", module="ssljax.train.run_plots")
  assert proc.returncode == 0 and "workdir" in proc.stdout
  cli.assert_one_line_error(cli.run(None, str(tmp_path), module="ssljax.train.run_plots"),
                            "no metrics.jsonl")
