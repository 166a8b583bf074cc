"""The pretraining loop: resume == uninterrupted run, NaN stops the run, SIGTERM checkpoints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ssljax import config as config_lib
from ssljax import errors
from ssljax.train import loop


def digits_config(**overrides):
  """Seconds-sized run on scikit-learn's 8×8 digits (offline, ships with sklearn)."""
  c = config_lib.base_config()
  c.method = "vicreg"
  c.data.name = "digits"
  c.data.image_size = 8
  c.data.batch_size = 64
  c.data.augmentation = "fashion_mnist"
  c.model.encoder = "convnet"
  c.model.encoder_kwargs = {"widths": (8, 16)}
  c.model.projector_hidden = (32,)
  c.model.projector_dim = 16
  c.loss.terms = {"vicreg": {"weight": 1.0}}
  c.optim.name = "sgd"
  c.optim.base_lr = 0.05
  c.optim.lr_scaling = "none"
  c.optim.warmup_epochs = 0.0
  c.total_steps = 6
  c.log_every_steps = 1
  c.checkpoint.every_steps = 100
  c.eval.knn_k = 5
  c.eval.linear_epochs = 2
  for k, v in overrides.items():
    node = c
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  return config_lib.finalize(c)


def read_metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def by_step(records, key):
  return {r["step"]: r[key] for r in records if key in r}


class RecordedLateMetrics(loop.LateMetrics):
  """`loop.LateMetrics` that records which step each call hands back for fetching."""

  calls = []

  def push(self, step, metrics):
    done = super().push(step, metrics)
    self.calls.append((f"push {step}", done and done[0]))
    return done

  def flush(self):
    done = super().flush()
    self.calls.append(("flush", done and done[0]))
    return done


@pytest.mark.slow  # end-to-end run (15-60 s); CI runs the slow set
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, capfd, monkeypatch):
  monkeypatch.setattr(loop, "LateMetrics", RecordedLateMetrics)
  monkeypatch.setattr(RecordedLateMetrics, "calls", [])
  config = digits_config(**{"eval.every_steps": 4})
  full = loop.train_and_evaluate(config, str(tmp_path / "full"), progress=True)
  # Step t's metrics are fetched after step t + 1 is dispatched, or before the
  # state is read (evaluation at step 4, the final checkpoint at step 6).
  assert RecordedLateMetrics.calls == [
      ("push 1", None), ("push 2", 1), ("push 3", 2), ("push 4", 3), ("flush", 4),
      ("push 5", None), ("push 6", 5), ("flush", 6), ("flush", None)]
  err = capfd.readouterr().err
  assert "\x1b[" not in err and err.count("6/6") == 1, err  # the final bar, drawn once
  lines = [l for l in err.splitlines() if l.startswith("[ssljax]")]
  took = r"(\d+ s|\d+ min \d\d s|\d+ h \d\d min)"  # loop._duration
  patterns = [rf"evaluation at step 4 \({took}\): knn \d+\.\d\d %, online_probe \d+\.\d\d %",
              rf"pretrain done: 6 steps in {took} \([\d,]+ images/s\)",
              rf"final evaluation done in {took}; plots in .*"]
  assert len(lines) == 3 and all(re.fullmatch(r"\[ssljax\] " + p, l)
                                 for p, l in zip(patterns, lines)), lines
  part = str(tmp_path / "resumed")
  stopped = loop.train_and_evaluate(config, part, stop_after_steps=3, progress=True)
  assert stopped == {"stopped_at_step": 3}
  err = capfd.readouterr().err
  assert err.count("3/6") == 1 and "[ssljax] stopping at step 3" in err, err
  resumed = loop.train_and_evaluate(config, part, progress=False)
  full_losses = by_step(read_metrics(tmp_path / "full"), "loss")
  resumed_losses = by_step(read_metrics(part), "loss")
  assert sorted(full_losses) == sorted(resumed_losses) == list(range(1, 7))
  # Same compiled program, same data order, same RNG stream: identical numbers.
  np.testing.assert_allclose([resumed_losses[s] for s in range(1, 7)],
                             [full_losses[s] for s in range(1, 7)], rtol=1e-6)
  assert full["train/steps"] == resumed["train/steps"] == 6
  for k in ("eval/knn/top1", "eval/linear/top1", "eval/online_probe/top1",
            "spectrum/embedding/effective_rank", "spectrum/projection/effective_rank"):
    assert resumed[k] == pytest.approx(full[k], abs=1e-6), k
  assert full["spectrum/projection/dim"] == 16
  for name in ("loss.png", "accuracy.png", "spectrum.png"):
    assert os.path.getsize(os.path.join(part, "plots", name)) > 1000, name


def test_nonfinite_loss_stops_training_with_clear_error(tmp_path):
  config = digits_config(**{"optim.base_lr": 1e30})
  with pytest.raises(loop.NonFiniteLossError, match="NaN/Inf"):
    loop.train_and_evaluate(config, str(tmp_path), progress=False)


@pytest.mark.slow  # end-to-end runs (20-45 s); CI runs the slow set
def test_a_kernel_default_changed_since_the_run_started_refuses_the_resume(tmp_path, monkeypatch):
  """The config spells out no VICReg coefficient, so config.json alone cannot see the change."""
  from ssljax import losses
  from ssljax.train import workdir as workdir_lib
  config = digits_config()
  workdir = str(tmp_path / "run")
  assert loop.train_and_evaluate(config, workdir, stop_after_steps=2,
                                 progress=False) == {"stopped_at_step": 2}
  record = os.path.join(workdir, workdir_lib.LOSS_HPARAMS_FILE)
  with open(record, encoding="utf-8") as f:
    saved = f.read()
  assert json.loads(saved)["vicreg"] == {"weight": 1.0, "sim_coeff": 25.0, "std_coeff": 25.0,
                                         "cov_coeff": 1.0, "eps": 1e-4}
  changed = {**losses.vicreg_loss.__kwdefaults__, "std_coeff": 20.0}
  monkeypatch.setattr(losses.vicreg_loss, "__kwdefaults__", changed)
  with pytest.raises(errors.WorkdirError, match=r"vicreg\.std_coeff: 25\.0 -> 20\.0"):
    loop.train_and_evaluate(config, workdir, progress=False)
  with open(record, encoding="utf-8") as f:
    assert f.read() == saved  # the refused run wrote nothing
  # A run saved before the record existed resumes (nothing to compare) and gains the record.
  monkeypatch.undo()
  os.unlink(record)
  assert loop.train_and_evaluate(config, workdir, stop_after_steps=4,
                                 progress=False) == {"stopped_at_step": 4}
  with open(record, encoding="utf-8") as f:
    assert f.read() == saved


@pytest.mark.slow  # end-to-end run (15-60 s); CI runs the slow set
def test_sigterm_writes_a_checkpoint_and_exits_cleanly(tmp_path):
  workdir = str(tmp_path / "run")
  code = (
      "import sys; from tests.train.test_loop import digits_config; from ssljax.train import loop\n"
      "r = loop.train_and_evaluate(digits_config(total_steps=100000), sys.argv[1], progress=False)\n"
      "print('RESULT', r)\n")
  env = dict(os.environ, PYTHONPATH=os.getcwd())
  proc = subprocess.Popen([sys.executable, "-c", code, workdir], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 180
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 3:
      break
    time.sleep(0.5)
  assert proc.poll() is None, proc.communicate()[0][-3000:]
  proc.send_signal(signal.SIGTERM)
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode == 0, out[-3000:]
  assert "RESULT {'stopped_at_step'" in out, out[-3000:]
  steps = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()]
  assert steps and max(steps) >= 3


def pid_config(**overrides):
  """digits, 23 steps/epoch: warm-up 2 steps, pseudo-labels refreshed at steps 2 and 5."""
  kw = {"pid.enabled": True, "pid.warmup_epochs": 2 / 23, "pid.refresh_every_epochs": 3 / 23,
        "pid.alpha_start": 1e-3, "pid.alpha_end": 1e-1, "pid.kmeans_iters": 10,
        "pid_monitor.every_steps": 4, "pid_monitor.num_examples": 256,
        "pid_monitor.num_clusters": 4, "pid_monitor.dim": 4, "total_steps": 8}
  kw.update(overrides)
  c = digits_config(**kw)
  with c.unlocked():
    c.loss.terms = {"vicreg": {"weight": 1.0}, "pid_unique": {"weight": 1.0}}
  c.lock()
  return c


@pytest.mark.slow  # end-to-end run (15-60 s); CI runs the slow set
def test_pid_ssl_pipeline_and_monitor_resume_exactly(tmp_path):
  full_dir, part_dir = str(tmp_path / "full"), str(tmp_path / "part")
  full = loop.train_and_evaluate(pid_config(), full_dir, progress=False)
  assert loop.train_and_evaluate(pid_config(), part_dir, stop_after_steps=6,
                                 progress=False) == {"stopped_at_step": 6}
  resumed = loop.train_and_evaluate(pid_config(), part_dir, progress=False)
  records = read_metrics(full_dir)
  weights = by_step(records, "loss/pid_unique/weight")
  assert weights[1] == 0.0 and weights[2] == 0.0          # phase 1: baseline only
  assert 0.0 < weights[3] < weights[8] <= 0.1 + 1e-7       # phase 2: ramped α
  assert sorted(by_step(records, "pid/refreshed")) == [2, 5]
  for key in ("pid/gauss/redundancy", "pid/disc/synergy", "pid/gauss/joint_mi"):
    values = by_step(records, key)
    assert sorted(values) == [4, 8] and all(np.isfinite(v) for v in values.values()), key
  # Resuming restores the pseudo-labels and the iterator: identical trajectory.
  np.testing.assert_allclose([by_step(read_metrics(part_dir), "loss")[s] for s in range(1, 9)],
                             [by_step(records, "loss")[s] for s in range(1, 9)], rtol=1e-6)
  assert resumed["eval/knn/top1"] == pytest.approx(full["eval/knn/top1"], abs=1e-6)


def test_pid_term_without_pipeline_is_a_config_error(tmp_path):
  c = digits_config()
  with c.unlocked():
    c.loss.terms = {"vicreg": {}, "pid_unique": {}}
  with pytest.raises(ValueError, match="pid.enabled=True"):
    loop.train_and_evaluate(c, str(tmp_path), progress=False)


@pytest.mark.slow  # end-to-end run (15-60 s); CI runs the slow set
def test_offline_evaluation_from_a_checkpoint_matches_the_end_of_training(tmp_path):
  workdir = str(tmp_path)
  trained = loop.train_and_evaluate(digits_config(), workdir, progress=False)
  offline = loop.evaluate_checkpoint(digits_config(), workdir)
  assert offline["train/steps"] == 6
  for k in ("eval/knn/top1", "eval/linear/top1", "eval/online_probe/top1"):
    assert offline[k] == pytest.approx(trained[k], abs=1e-6), k
  assert os.path.exists(os.path.join(workdir, "eval_results_6.json"))
  # Transfer evaluation: the same checkpoint probed on another dataset (Fashion-MNIST's
  # 28x28 images resized to the 8x8 view size), written to its own file.
  transfer = loop.evaluate_checkpoint(digits_config(**{
      "eval.dataset": "fashion_mnist", "eval.knn_train_examples": 2000,
      "eval.linear_train_examples": 2000}), workdir)
  keys = {k for k in transfer if k.startswith("eval/")}
  assert keys == {"eval/transfer/fashion_mnist/knn/top1", "eval/transfer/fashion_mnist/linear/top1"}
  for k in keys:  # above chance (10 classes) on features the model never trained on
    assert transfer[k] > 0.2, (k, transfer[k])
  assert os.path.exists(os.path.join(workdir, "eval_results_6_fashion_mnist.json"))


def test_offline_evaluation_without_checkpoint_says_what_to_do(tmp_path):
  with pytest.raises(errors.CheckpointError, match="train first"):
    loop.evaluate_checkpoint(digits_config(), str(tmp_path))


@pytest.mark.slow  # end-to-end run (15-60 s); CI runs the slow set
def test_fsdp_run_trains_and_evaluates(tmp_path):
  """With parameters sharded over 8 devices the loop still evaluates (it replicates first)."""
  config = digits_config(**{"parallel.fsdp": True, "parallel.fsdp_min_size": 16})
  results = loop.train_and_evaluate(config, str(tmp_path), progress=False)
  assert results["train/steps"] == 6 and 0.0 <= results["eval/linear/top1"] <= 1.0
  assert "eval/online_probe/top1" in results
