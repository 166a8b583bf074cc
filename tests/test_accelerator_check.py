"""benchmarks/accelerator_check.sh --quick runs on CPU and writes its markdown table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_quick_mode_writes_the_table(tmp_path):
  """One small model keeps this in CI's budget; the full --quick run (ResNet-50 and ViT-S at
  224 px, the demo) takes ~10 min to compile on 2 CPU cores and is run by hand."""
  out = tmp_path / "accelerator_check.md"
  env = dict(os.environ, PYTHON=sys.executable, SSLJAX_COMPILATION_CACHE="off")
  env.pop("OUT", None)
  proc = subprocess.run(["bash", "benchmarks/accelerator_check.sh", "--quick", "--models=ResNet-18 32px",
                         "--no_demo", f"--out={out}"],
                        cwd=REPO, env=env, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = out.read_text()
  assert "No accelerator was available" in text
  for dtype in ("float32", "bfloat16"):
    assert f"| ResNet-18 32px | {dtype} | 4 |" in text, dtype
  assert "exit status" not in text
