"""Smoke test of ``benchmarks/parallel_runs.py`` (the figure behind the table's ``--jobs``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # three processes each compile the demo's train step
# Above conftest's 300 s hang guard: ~1.5 min idle, > 5 min while the machine also trains
# (measured); the subprocess has its own 600 s limit.
@pytest.mark.timeout(900)
def test_one_round_reports_both_arms_and_the_same_start(tmp_path):
  out = tmp_path / "parallel_runs.md"
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  proc = subprocess.run([sys.executable, os.path.join("benchmarks", "parallel_runs.py"), "--jobs=2",
                         "--warmup=1", "--steps=1", "--rounds=1", f"--out={out}"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = out.read_text()
  rows = {line.split(" | ")[0].lstrip("| "): line for line in report.splitlines()
          if line.startswith("| ")}
  assert rows["one"].startswith("| one | 1 × 2 |") and rows["pinned"].startswith("| pinned | 2 × 1 |")
  assert rows["one"].endswith("| 1.00 |")
  # Same seed and batches: after one update the 1-CPU and 2-CPU losses differ only by the
  # order of float32 sums (measured 6e-7 relative; bound 1e-5).
  losses = [float(v) for v in report.split("distinct values per arm: ")[1].rstrip(".\n")
            .replace("one ", "").replace("pinned ", "").replace(";", ",").split(",")]
  assert max(losses) - min(losses) <= 1e-5 * max(losses), losses


def test_row_takes_the_tables_recipe_with_the_shared_encoder_and_rejects_unknown_rows():
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  try:
    import parallel_runs
  finally:
    sys.path.pop(0)
  demo, simclr = parallel_runs.load_row_config(""), parallel_runs.load_row_config("simclr")
  assert "corinfomax" in demo.loss.terms and "simclr" in simclr.loss.terms
  assert simclr.model.encoder_kwargs.widths == demo.model.encoder_kwargs.widths
  assert simclr.data.batch_size == demo.data.batch_size
  with pytest.raises(SystemExit, match="--row nope: not a row of"):
    parallel_runs.load_row_config("nope")
