"""benchmarks/accelerator_check.sh --quick runs on CPU and writes its markdown table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_quick_mode_writes_the_table(tmp_path):
  out = tmp_path / "accelerator_check.md"
  env = dict(os.environ, PYTHON=sys.executable, SSLJAX_COMPILATION_CACHE="off")
  env.pop("OUT", None)
  proc = subprocess.run(["bash", "benchmarks/accelerator_check.sh", "--quick", f"--out={out}"],
                        cwd=REPO, env=env, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = out.read_text()
  assert "No accelerator was available" in text
  for model in ("ResNet-18 32px", "ResNet-50 224px", "ViT-S/16 224px"):
    for dtype in ("float32", "bfloat16"):
      assert f"| {model} | {dtype} | 4 |" in text, (model, dtype)
  assert "Fashion-MNIST demo" in text and "exit status" not in text
