"""`scripts/setup.sh` runs pip once, then is a quiet one-line check until setup.py or the extras change.

Hermetic: a copy of the script in a temporary checkout whose ``.venv`` sees
this interpreter's packages through a ``.pth`` file, with a stub ``pip``
module (records its arguments) and stub ``apt-get``/``sudo`` on ``PATH``, so
nothing is downloaded or installed.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(name="checkout")
def _checkout(tmp_path):
  for name in ("scripts/setup.sh", "setup.py", "README.md"):
    os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
    shutil.copy(os.path.join(ROOT, name), tmp_path / name)
  venv.create(tmp_path / ".venv", with_pip=False)
  (target,) = (tmp_path / ".venv" / "lib").glob("python*/site-packages")
  (target / "zz_test_stack.pth").write_text("\n".join(site.getsitepackages()) + "\n")
  (target / "pip").mkdir()
  (target / "pip" / "__init__.py").write_text("")  # a package: shadows the real pip
  (target / "pip" / "__main__.py").write_text(
      "import os, sys\n"
      "with open(os.environ['PIP_CALLS'], 'a') as f: f.write(' '.join(sys.argv[1:]) + '\\n')\n")
  stubs = tmp_path / "stubs"
  stubs.mkdir()
  for tool in ("apt-get", "sudo"):  # never reached when the data and venv module exist
    (stubs / tool).write_text("#!/bin/sh\necho \"$0 $*\" >> \"$PIP_CALLS\"\n")
    (stubs / tool).chmod(0o755)
  return tmp_path


def _setup(checkout, **env):
  calls = checkout / "calls.txt"
  calls.write_text("")
  proc = subprocess.run(
      ["bash", "scripts/setup.sh"], cwd=checkout, capture_output=True, text=True, timeout=300,
      env={**os.environ, "PIP_CALLS": str(calls),
           "PATH": f"{checkout / 'stubs'}{os.pathsep}{os.environ['PATH']}", **env})
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return proc.stdout.splitlines(), proc.stderr, calls.read_text().splitlines()


@pytest.mark.slow
def test_second_run_skips_pip_and_prints_one_line(checkout):
  out, err, calls = _setup(checkout)
  install = "install -q -e .[test]"
  assert calls == ["install -q --upgrade pip", install], calls
  assert out[0] == "[setup] pip install -e .[test] into .venv (log: .venv/ssljax-setup.log)"
  assert len(out) == 2 and out[1].startswith("[setup] ok: ssljax "), out
  assert err == ""
  out, err, calls = _setup(checkout)
  assert calls == [] and err == "", (calls, err)
  assert len(out) == 1 and out[0].startswith("[setup] ok: ssljax ") and "up to date" in out[0]
  # A changed setup.py or other extras install again.
  with open(checkout / "setup.py", "a", encoding="utf-8") as f:
    f.write("# a new requirement\n")
  assert _setup(checkout)[2] == ["install -q --upgrade pip", install]
  assert _setup(checkout, SSLJAX_EXTRAS="test,notebook")[2][-1] == "install -q -e .[test,notebook]"
  assert _setup(checkout, SSLJAX_EXTRAS="test,notebook")[2] == []
