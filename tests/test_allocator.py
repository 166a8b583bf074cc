"""The CLI's glibc-tunables re-exec (`ssljax.allocator`): the decision, and the real command."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

from ssljax import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGV = ["python3", "-X", "faulthandler", "-m", "ssljax.main", "--config=c.py", "--workdir=w"]
EXE = "/opt/venv/bin/python3"


def _plan(environ, *, system="Linux", libc="glibc 2.36", orig_argv=ARGV, executable=EXE):
  return allocator.plan(environ, system=system, libc=libc, orig_argv=orig_argv,
                        executable=executable)


def test_reexecs_with_tunables_and_marker_keeping_argv_and_env():
  environ = {"PATH": "/bin", "XLA_FLAGS": "--foo", "SSLJAX_NO_REEXEC": "0"}
  argv, env = _plan(environ)
  # The interpreter's own options and -m survive; only argv[0] becomes sys.executable.
  assert argv == [EXE, "-X", "faulthandler", "-m", "ssljax.main", "--config=c.py", "--workdir=w"]
  assert env == {**environ, "GLIBC_TUNABLES": allocator.TUNABLES, "SSLJAX_REEXECED": "1"}
  assert "GLIBC_TUNABLES" not in environ  # the caller's mapping is not modified


def test_script_entry_keeps_the_script_path():
  argv, _ = _plan({}, orig_argv=["/usr/bin/python3", "/src/ssljax/main.py", "--debug"])
  assert argv == [EXE, "/src/ssljax/main.py", "--debug"]


@pytest.mark.parametrize("environ", [
    {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"},  # the user's value is kept
    {"GLIBC_TUNABLES": ""},  # even an empty one: it is the user's choice
    {"SSLJAX_REEXECED": "1"},  # already re-exec'd: never loop
    {"SSLJAX_NO_REEXEC": "1"},
    {"SSLJAX_NO_REEXEC": "yes"},
])
def test_env_that_prevents_the_reexec(environ):
  assert _plan(environ) is None


@pytest.mark.parametrize("value", ["", "0", "false", "off", "No"])
def test_opt_out_values_that_mean_off_do_not_opt_out(value):
  assert _plan({"SSLJAX_NO_REEXEC": value}) is not None


@pytest.mark.parametrize("kwargs", [
    {"system": "Darwin", "libc": None},
    {"system": "Windows", "libc": None},
    {"libc": None},  # musl: os.confstr has no CS_GNU_LIBC_VERSION
    {"libc": "musl 1.2"},
    {"executable": ""},  # embedded interpreter: nothing to exec
    {"executable": None},
    {"orig_argv": ["python3"]},  # interactive: re-exec'ing would start a REPL
    {"orig_argv": []},
])
def test_platforms_and_entries_that_do_not_reexec(kwargs):
  assert _plan({}, **kwargs) is None


def test_tunables_are_glibc_malloc_tunables():
  names = [t.split("=")[0] for t in allocator.TUNABLES.split(":")]
  assert names and all(n.startswith("glibc.malloc.") for n in names)
  assert all(t.split("=")[1].isdigit() for t in allocator.TUNABLES.split(":"))


def test_glibc_version_matches_this_platform():
  version = allocator.glibc_version()
  if sys.platform.startswith("linux") and os.confstr_names.get("CS_GNU_LIBC_VERSION"):
    assert version is None or version.startswith("glibc ")
  else:
    assert version is None


def test_describe_names_who_set_the_value():
  assert "set by ssljax" in allocator.describe({"GLIBC_TUNABLES": "x", "SSLJAX_REEXECED": "1"})
  assert allocator.describe({"GLIBC_TUNABLES": "x"}) == "GLIBC_TUNABLES=x (yours, kept)"
  assert "unset" in allocator.describe({})


def test_only_the_cli_main_block_reexecs():
  """No import of ssljax (tests, notebooks) re-execs: one call, under ``__name__ == '__main__'``."""
  calls = []
  for path in pathlib.Path(ROOT, "ssljax").rglob("*.py"):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
               and ast.unparse(block.test) == "__name__ == '__main__'" for n in ast.walk(block)}
    calls += [(path.name, id(n) in guarded) for n in ast.walk(tree)
              if isinstance(n, ast.Call) and ast.unparse(n.func).endswith("maybe_reexec")]
  assert calls == [("main.py", True)]


def _cli(env_update: dict, drop=("GLIBC_TUNABLES", "SSLJAX_REEXECED", "SSLJAX_NO_REEXEC")):
  env = {k: v for k, v in os.environ.items() if k not in drop}
  env.update(env_update, PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-m", "ssljax.main", "--print_config", "--debug",
                         "--config=configs/fashion_mnist/vicreg.py:runlocal"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # three CLI subprocesses
def test_cli_reexecs_once_with_the_tunables_and_keeps_a_user_value():
  proc = _cli({})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '"method": "vicreg"' in proc.stdout
  lines = [l for l in proc.stderr.splitlines() if l.startswith("[ssljax] GLIBC_TUNABLES")]
  if sys.platform.startswith("linux") and allocator.glibc_version():
    assert lines == [f"[ssljax] GLIBC_TUNABLES={allocator.TUNABLES} (set by ssljax: XLA's scratch "
                     "buffers stay mapped; SSLJAX_NO_REEXEC=1 turns it off)"], proc.stderr[-3000:]
  else:  # macOS, musl: nothing to tune, no re-exec
    assert lines == ["[ssljax] GLIBC_TUNABLES unset: glibc malloc defaults"], proc.stderr[-3000:]

  proc = _cli({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "[ssljax] GLIBC_TUNABLES=glibc.malloc.hugetlb=0 (yours, kept)" in proc.stderr

  proc = _cli({"SSLJAX_NO_REEXEC": "1"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "[ssljax] GLIBC_TUNABLES unset: glibc malloc defaults" in proc.stderr
