"""The whole train step on XLA's optimised path: 8 devices == 1 device.

The suite runs with ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` for fast compiles
(the root conftest.py), so fusion and scheduling as users get them are otherwise
never exercised. This runs the train step's distributed-equivalence test
(both loss modes, `tests/train/test_step.py`) in a fresh interpreter with the
optimisations on and 8 fake CPU devices.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_step_equivalence_with_xla_optimisations():
  env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="0", JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/train/test_step.py", "-k", "test_eight_devices_equal_one_device"]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, f"optimised-XLA equivalence failed:\n{out[-4000:]}"
  assert "1 passed" in out, f"the equivalence test did not run:\n{out[-4000:]}"
