"""Smoke test of ``experiments/fashion_mnist_table.py --quick`` on two rows (issue #14).

Runs the whole pipeline as a command (calibration, validation sweep, choice,
test-split seeds, references, the markdown) into a temporary work root, then
runs it again to check that every run is reused from the cache (no training,
same table) and that rows that were not asked for are marked pending.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table():
  """The script as a module (``experiments/`` is not a package)."""
  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  try:
    import fashion_mnist_table  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.pop(0)
  return fashion_mnist_table


def _run(tmp_path, *extra):
  args = ["--quick", "--rows", "vicreg,supervised", "--out", str(tmp_path / "out"),
          "--workroot", str(tmp_path / "runs"), *extra]
  # As a user runs it: this process's 8 fake devices (conftest's XLA_FLAGS) are not inherited.
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  proc = subprocess.run([sys.executable, os.path.join("experiments", "fashion_mnist_table.py"),
                         *args], cwd=ROOT, capture_output=True, text=True, timeout=1500,
                        check=False, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "out" / "fashion_mnist_quick.md", encoding="utf-8") as f:
    return proc.stdout, f.read()


@pytest.mark.slow  # trains 8 tiny runs in a subprocess (minutes on 2 cores)
# Above conftest's 300 s hang guard: ~2.5 min idle, 3× that when the machine also trains
# (measured: > 300 s at load 4.5); the subprocess has its own 1500 s limit.
@pytest.mark.timeout(1500)
def test_quick_table_runs_caches_and_marks_pending(tmp_path):
  # First in parallel jobs (one row per pinned process), then read back by a plain run.
  jobs = min(2, len(os.sched_getaffinity(0)))
  out1, md1 = _run(tmp_path, "--jobs", str(jobs))
  assert "calibrated vicreg" in out1 and "sweep vicreg" in out1 and "final supervised seed 1" in out1
  if jobs == 2:  # every row ran in its own job, on one CPU
    assert "[vicreg] sweep vicreg" in out1 and "[supervised] final supervised seed 1" in out1
    runs = tmp_path / "runs"
    results = [*runs.glob("sweep/*/*/results.json"), *runs.glob("final/*/*/results.json")]
    assert results and all(json.loads(p.read_text())["cpus"] == 1 for p in results)
  table = md1.split("## Reading")[0]  # the main table (the sweep table repeats the labels)
  rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()
          if line.startswith("| ")}
  for label in ("VICReg", "Supervised (cross-entropy, light aug.)", "Random-init encoder",
                "Raw pixels (784-d)"):
    assert "pending" not in rows[label], rows[label]
    assert " ± " in rows[label], rows[label]  # 2 seeds in quick mode
  assert "pending" in rows["SimCLR"] and "pending" in rows["CorInfoMax"]
  assert "## Reading" in md1 and "above raw pixels" in md1
  cal = json.loads((tmp_path / "runs" / "calibration.json").read_text())
  assert set(cal) == {"vicreg", "supervised"} and cal["vicreg"]["steps_per_second"] > 0
  # The test split is only read by the final runs: every sweep run evaluates on the hold-out.
  sweeps = list((tmp_path / "runs" / "sweep").glob("*/*/config.json"))
  assert len(sweeps) == 4, sweeps  # 2 rows × 2 points in quick mode
  for config_path in sweeps:
    assert json.loads(config_path.read_text())["data"]["validation_holdout"] == 10000
  finals = list((tmp_path / "runs" / "final").glob("*/*/config.json"))  # final/<row>/<point>_s<seed>
  assert len(finals) == 4, finals  # 2 rows × 2 seeds
  for config_path in finals:
    assert json.loads(config_path.read_text())["data"]["validation_holdout"] == 0

  refs = sorted((tmp_path / "runs").glob("reference_s*/results.json"))
  written = [p.stat().st_mtime_ns for p in refs]
  out2, md2 = _run(tmp_path)
  assert len(refs) == 2 and [p.stat().st_mtime_ns for p in refs] == written  # read, not redone
  assert "calibrated" not in out2 and "sweep vicreg" in out2  # reused, reported again
  assert "[vicreg]" not in out2 and "pretrain done" not in out2  # nothing trained again
  strip = lambda md: [l for l in md.splitlines() if not l.startswith("Produced by")]
  assert strip(md2) == strip(md1)


def test_sweep_is_a_two_stage_coordinate_search_around_each_recipe():
  """Stage 1: lr × (1/3, 1, 3) at the recipe's own coefficient; stage 2: the other coefficients."""
  table = _table()
  for key, row in table.ROWS.items():
    own = table.recipe_coef(key)
    assert own in row[5], key  # every grid holds the recipe's value
    stage1 = table.grid(key, quick=False)
    assert stage1 == [(f, own) for f in table.LR_FACTORS], key
    stage2 = table.grid(key, quick=False, best_lr=3.0)
    assert sorted(c for _, c in stage2) == sorted(c for c in row[5] if c != own), key
    assert {f for f, _ in stage2} == {3.0}, key
  # A best rate at an end of what was tried gets one more ×3 step outwards.
  grid = list(table.LR_FACTORS)
  assert table.edge_extension(3.0, grid, quick=False) == 9.0
  assert abs(table.edge_extension(1 / 3, grid, quick=False) - 1 / 9) < 1e-12
  assert table.edge_extension(1.0, grid, quick=False) is None
  assert table.edge_extension(3.0, grid + [9.0], quick=False) is None  # 9 was tried and lost
  assert table.edge_extension(9.0, grid + [9.0], quick=False) == 27.0
  assert table.MAX_EDGE_EXTENSIONS == 4  # × 243 at most (× 27 was every first row's choice)
  # A coefficient left at the kernel's default is read from the kernel's signature.
  assert table.recipe_coef("vicreg_logdet") == 1.0


def test_a_cached_run_survives_a_new_config_field_at_its_default():
  table = _table()
  current = json.loads(table.make_config("simclr", seed=0, total_steps=100, lr_factor=1.0,
                                         coef=0.2, val=True, quick=False).to_json_best_effort())
  assert table.same_run(current, current)
  saved = json.loads(json.dumps(current))
  del saved["data"]["host_resize"]  # a run saved before the field existed
  assert table.same_run(saved, current)
  current_other = json.loads(json.dumps(current))
  current_other["data"]["host_resize"] = "pillow"  # ... but not at a non-default value
  assert not table.same_run(saved, current_other)
  changed = json.loads(json.dumps(saved))
  changed["optim"]["base_lr"] *= 3  # any saved field that differs
  assert not table.same_run(changed, current)
  assert not table.same_run(dict(saved, removed_field=1), current)  # a field that went away


def test_an_interrupted_run_is_not_a_cached_result(tmp_path):
  """A SIGTERM'd run's ``{'stopped_at_step': N}`` record must not stand for a finished run."""
  table = _table()
  config = table.make_config("simclr", seed=0, total_steps=100, lr_factor=1.0, coef=0.2,
                             val=True, quick=False)
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  for record, reused in (({"stopped_at_step": 40, "wall_seconds": 9.0}, False),
                         ({"failed": "loss is NaN at step 3"}, True),
                         ({"eval/linear/top1": 0.8, "eval/knn/top1": 0.7}, True)):
    (tmp_path / "results.json").write_text(json.dumps(record))
    assert (table.cached_results(str(tmp_path), config) is not None) == reused, record


def test_jobs_beyond_the_cpus_are_refused(capsys):
  table = _table()
  for jobs in (0, len(os.sched_getaffinity(0)) + 1):
    with pytest.raises(SystemExit) as e:
      table.main(["--phase", "report", "--jobs", str(jobs)])
    assert e.value.code == 2
    assert f"--jobs {jobs}: must be between 1 and" in capsys.readouterr().err


def test_the_cache_returns_finished_runs_and_references_not_interrupted_runs(tmp_path):
  table = _table()
  config = table.make_reference_config(0, quick=True)
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  for record, reused in (({"pixels_linear/top1": 0.84, "random_init_linear/top1": 0.83}, True),
                         ({"eval/linear/top1": 0.9, "eval/knn/top1": 0.88}, True),
                         ({"failed": "non-finite loss at step 7"}, True),
                         ({"stopped_at_step": 291}, False)):
    (tmp_path / "results.json").write_text(json.dumps(record))
    assert (table.cached_results(str(tmp_path), config) == record if reused else
            table.cached_results(str(tmp_path), config) is None), record
  other = table.make_reference_config(1, quick=True)  # another seed: another run
  assert table.cached_results(str(tmp_path), other) is None


def test_a_finished_run_trained_under_another_loss_default_is_not_reused(tmp_path):
  """config.json spells out the swept coefficient only; loss_hparams.json holds the rest."""
  table = _table()
  from ssljax.train import objectives
  from ssljax.train import workdir as workdir_lib
  config = table.make_config("vicreg", seed=0, total_steps=10, lr_factor=1.0, coef=25.0,
                             val=True, quick=True)
  record = {"eval/linear/top1": 0.9, "eval/knn/top1": 0.88}
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  (tmp_path / "results.json").write_text(json.dumps(record))
  assert table.cached_results(str(tmp_path), config) == record  # saved before the record existed
  terms = objectives.make_objective(config.loss.terms).terms
  (tmp_path / "loss_hparams.json").write_text(workdir_lib.loss_hparams_json(terms))
  assert table.cached_results(str(tmp_path), config) == record
  weight, hp = terms["vicreg"]
  old_default = {"vicreg": (weight, {**hp, "std_coeff": 20.0})}
  (tmp_path / "loss_hparams.json").write_text(workdir_lib.loss_hparams_json(old_default))
  assert table.cached_results(str(tmp_path), config) is None


def test_sigterm_outside_training_keeps_the_run_and_stops_at_the_next_boundary(tmp_path,
                                                                              monkeypatch):
  """A SIGTERM during a run's final evaluation: the run is kept, the job stops before the next."""
  table = _table()
  finished = {"eval/linear/top1": 0.8, "eval/knn/top1": 0.7}

  def train_then_signal_during_evaluation(config, workdir, progress):
    del config, progress
    os.makedirs(workdir, exist_ok=True)
    os.kill(os.getpid(), signal.SIGTERM)  # after the loop restored the table's handler
    return dict(finished)

  monkeypatch.setattr(table.loop, "train_and_evaluate", train_then_signal_during_evaluation)
  monkeypatch.setattr(table, "_STOP_REQUESTED", [])
  config = table.make_config("simclr", seed=0, total_steps=100, lr_factor=1.0, coef=0.2,
                             val=True, quick=False)
  previous = signal.getsignal(signal.SIGTERM)
  try:
    table.stop_between_runs()
    with pytest.raises(SystemExit, match="run again to resume") as e:
      table.train(config, str(tmp_path / "run"))
    assert str(tmp_path / "run") in str(e.value)
    with open(tmp_path / "run" / "results.json", encoding="utf-8") as f:
      assert {k: v for k, v in json.load(f).items() if k in finished} == finished
    with pytest.raises(SystemExit, match="before"):  # the next run does not start
      table.train(config, str(tmp_path / "next"))
    assert not (tmp_path / "next").exists()
  finally:
    signal.signal(signal.SIGTERM, previous)
