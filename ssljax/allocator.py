"""glibc malloc tunables for the CLI: keep XLA:CPU's scratch memory mapped across steps.

XLA:CPU allocates each step's temporary buffer (~151 MiB for the default
Fashion-MNIST VICReg step) with ``malloc``. glibc serves a block above its mmap
threshold (at most 32 MiB) with a fresh ``mmap`` and returns it with
``munmap`` on ``free``, so every step faults the buffer in again page by page
and the kernel zeroes every page: ~38.5 k minor page faults and 65-100 ms of
system time per step on a 2-core CPU. ``GLIBC_TUNABLES`` (``TUNABLES``)
makes malloc serve such blocks from the main heap and keep it (one arena, no
``mmap``, a large trim threshold), backed by transparent huge pages: 0-3 faults
and 2-15 ms of system time per step, the same results bit for bit
(``docs/performance.md``; ``benchmarks/allocator.py`` measures it). The cost:
the process keeps its peak heap, and every thread's ``malloc`` shares one
arena.

glibc reads ``GLIBC_TUNABLES`` once, when the process starts, so the
command-line entry (``python -m ssljax.main``) re-execs itself with it
(`maybe_reexec`) before anything heavy is imported. It does nothing when the
variable is already set (the user's value is kept), when
``SSLJAX_NO_REEXEC`` is set (``1``), off Linux or off glibc (macOS, musl), or
in the re-exec'd process itself (``SSLJAX_REEXECED``). Importing ssljax never
re-execs: only ``ssljax.main``'s ``__main__`` block calls it.

`plan` is the pure decision (environment, platform, libc, argv → the argv
and environment to exec, or ``None``):

>>> env = {"PATH": "/bin"}
>>> argv, new_env = plan(env, system="Linux", libc="glibc 2.36",
...                      orig_argv=["python3", "-m", "ssljax.main", "--debug"],
...                      executable="/usr/bin/python3")
>>> argv
['/usr/bin/python3', '-m', 'ssljax.main', '--debug']
>>> new_env["GLIBC_TUNABLES"] == TUNABLES, new_env[MARKER_ENV]
(True, '1')
>>> plan({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, system="Linux", libc="glibc 2.36",
...      orig_argv=["python3", "x.py"], executable="/usr/bin/python3") is None
True
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Mapping, Sequence

TUNABLES_ENV = "GLIBC_TUNABLES"
OPT_OUT_ENV = "SSLJAX_NO_REEXEC"
MARKER_ENV = "SSLJAX_REEXECED"

# arena_max=1: XLA's worker threads allocate from the main (sbrk) heap; a
# thread arena cannot hold a block over 64 MiB and falls back to mmap even when
# mmap_max=0. mmap_max=0: no block is served by mmap. trim_threshold (1 GiB):
# freeing the buffer does not shrink the heap (which would unmap it again).
# hugetlb=1: the heap is madvise'd for transparent huge pages (2 MiB faults
# while it grows). Chosen by benchmarks/allocator.py (each part measured).
TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
            "glibc.malloc.trim_threshold=1073741824")

_OFF = ("", "0", "false", "no", "off")


def glibc_version() -> str | None:
  """``'glibc 2.36'`` when this process runs on glibc, else ``None`` (musl, macOS, Windows)."""
  try:
    return os.confstr("CS_GNU_LIBC_VERSION")
  except (AttributeError, ValueError, OSError):  # no confstr (Windows) or not glibc
    return None


def plan(environ: Mapping[str, str], *, system: str, libc: str | None,
         orig_argv: Sequence[str], executable: str | None
         ) -> tuple[list[str], dict[str, str]] | None:
  """The ``(argv, environment)`` to re-exec with, or ``None`` to run as is.

  Args:
    environ: the current environment.
    system: ``platform.system()`` (only ``'Linux'`` re-execs).
    libc: `glibc_version` (``None``: not glibc, nothing to tune).
    orig_argv: ``sys.orig_argv``, the interpreter's own command line
      (``['python', '-m', 'ssljax.main', ...]``; its first entry is replaced
      by ``executable``).
    executable: ``sys.executable``.
  """
  if (system != "Linux" or not libc or not libc.startswith("glibc") or TUNABLES_ENV in environ
      or MARKER_ENV in environ or environ.get(OPT_OUT_ENV, "").strip().lower() not in _OFF
      or not executable or len(orig_argv) < 2):
    return None
  env = dict(environ)
  env[TUNABLES_ENV] = TUNABLES
  env[MARKER_ENV] = "1"
  return [executable, *orig_argv[1:]], env


def maybe_reexec() -> None:
  """Replaces this process by itself with ``TUNABLES`` set, when `plan` says so; else returns."""
  todo = plan(os.environ, system=platform.system(), libc=glibc_version(),
              orig_argv=getattr(sys, "orig_argv", []), executable=sys.executable)
  if todo is None:
    return
  argv, env = todo
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    os.execve(argv[0], argv, env)
  except OSError:  # the exec failed: run as is, with glibc's defaults
    return


def describe(environ: Mapping[str, str] = os.environ) -> str:
  """One line on the allocator setting of this process (``--debug`` prints it)."""
  value = environ.get(TUNABLES_ENV)
  if value is not None and MARKER_ENV in environ:
    return (f"{TUNABLES_ENV}={value} (set by ssljax: XLA's scratch buffers stay mapped; "
            f"{OPT_OUT_ENV}=1 turns it off)")
  if value is not None:
    return f"{TUNABLES_ENV}={value} (yours, kept)"
  return f"{TUNABLES_ENV} unset: glibc malloc defaults"
