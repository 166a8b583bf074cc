"""Smoke test of ``experiments/estimators.py --quick`` (issue #5.3).

Runs the script's quick mode as a command (a subprocess, so that it gets the
script's own XLA flags and a hang would end in a timeout instead of stalling
the suite) into a temporary directory, then checks that the markdown report and
the four plots are written and that the headline numbers (``--json``) are sane.
The bounds are those a correct estimator must meet even on the quick grids (10
RFF draws, few samples); each is explained where it is asserted. Timing slopes
are not asserted: under the suite's ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` (inherited
from the root conftest.py) and on a shared CPU they are meaningless.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOTS = ("rff", "logdet_mi", "pid", "entropy")


@pytest.mark.slow  # runs experiments/estimators.py in a subprocess
def test_quick_run_writes_report_and_sane_numbers(tmp_path):
  out = str(tmp_path)
  json_path = os.path.join(out, "summary.json")
  args = ["--quick", "--out", out, "--seed", "0", "--json", json_path]
  proc = subprocess.run([sys.executable, os.path.join("experiments", "estimators.py"), *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(json_path, encoding="utf-8") as fh:
    summary = json.load(fh)

  # Files: the markdown (with the command in its header and all four sections) and the plots.
  md_path = os.path.join(out, "estimators.md")
  assert os.path.isfile(md_path)
  with open(md_path, encoding="utf-8") as fh:
    md = fh.read()
  assert "python experiments/estimators.py " + " ".join(args) in md
  for title in ("## 1. Linear-time (RFF) HSIC", "## 2. Log-det Gaussian MI",
                "## 3. PID estimators", "## 4. Entropy estimators"):
    assert title in md, title
  assert md.count("**Reading.**") == 4
  assert "nan" not in md.lower().replace("nans", "")
  for name in PLOTS:
    png = os.path.join(out, f"estimators_{name}.png")
    assert os.path.isfile(png), png
    with open(png, "rb") as fh:
      assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert 5_000 < os.path.getsize(png) < 500_000  # a real plot, and a small file

  # 1. Monte-Carlo rate: the RFF relative error must fall like F^-1/2 (slope -0.5;
  # [-0.8, -0.2] leaves room for 10 draws on 3 values of F).
  for key, slope in summary["rff_slopes"].items():
    assert -0.8 <= slope <= -0.2, (key, slope)

  # 2. The closed form is exact and the plug-in bias is the Wishart expectation.
  assert summary["mi_closed_form_err"] < 1e-10
  assert summary["mi_cells_within_3se"] >= summary["mi_cells"] - 1  # one 3-s.e. miss allowed
  assert summary["mi_max_beta_bias"] < summary["mi_max_bias"]

  # 3. Discrete PIDs reproduce the definitions on the canonical systems; the Gaussian
  # closed form is exact; the batch estimators are close at these sample sizes
  # (plug-in / min-max errors are O(0.01) at n ~ 10^3-10^4).
  assert summary["canonical_max_err"]["BROJA"] < 1e-6
  assert summary["canonical_max_err"]["I_min"] < 1e-10
  assert summary["canonical_max_err"]["MMI"] < 1e-10
  assert summary["gaussian_closed_err"] < 1e-10
  assert summary["gauss_batch_err_largest_n"] < 0.05
  assert summary["disc_batch_err_largest_n"] < 0.05

  # 4. Kolchinsky-Tracey bounds bracket the Monte-Carlo entropy, the Gaussian fit is above
  # it, and the LogDet form equals the Gaussian entropy of the moment-matched covariance.
  assert summary["entropy_violations"] == 0
  assert summary["entropy_gfit_check_err"] < 1e-9
  assert all(math.isfinite(v) for v in summary["entropy_max_kl_bh_gap"].values())
