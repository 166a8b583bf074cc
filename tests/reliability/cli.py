"""Driving the real CLI as a user would: ``python -m ssljax.main`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = "configs/fashion_mnist/vicreg.py:runlocal"


def env() -> dict:
  e = dict(os.environ)
  e.setdefault("JAX_PLATFORMS", "cpu")
  e.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")  # compile time dominates tiny runs
  e["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
  return e


def command(workdir, *flags, config=SMOKE, module="ssljax.main"):
  args = [sys.executable, "-m", module]
  if module == "ssljax.main":
    args += [f"--config={config}", f"--workdir={workdir}", "--no_progress"]
  return args + list(flags)


def run(workdir, *flags, config=SMOKE, timeout=300, module="ssljax.main"):
  """Runs the CLI to completion; returns the CompletedProcess (text)."""
  return subprocess.run(command(workdir, *flags, config=config, module=module), cwd=ROOT,
                        env=env(), capture_output=True, text=True, timeout=timeout)


def start(workdir, *flags, config=SMOKE):
  """Starts the CLI without waiting."""
  return subprocess.Popen(command(workdir, *flags, config=config), cwd=ROOT, env=env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def metrics(workdir) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def assert_one_line_error(proc, *fragments):
  """Exit status 2, one ``error:`` line on stderr naming the fragments, no traceback."""
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert len(lines) == 1, proc.stderr[-3000:]
  for fragment in fragments:
    assert fragment in lines[0], (fragment, lines[0])
  return lines[0]
