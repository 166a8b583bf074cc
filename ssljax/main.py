"""Command line: ``python -m ssljax.main --config=configs/<dataset>/<method>.py --workdir=DIR``.

Config fields are overridden with ``--config.key=value`` (ml_collections
config flags), e.g. ``--config.data.batch_size=512 --config.num_epochs=100``.
A config file may take an argument after a colon:
``--config=configs/fashion_mnist/vicreg.py:runlocal``. ``--print_config`` prints
the effective config (after the overrides) as JSON and exits.

Compiled programs are cached on disk across runs (`enable_compilation_cache`;
``SSLJAX_COMPILATION_CACHE=off`` disables it). On Linux/glibc the command
re-execs itself once with ``GLIBC_TUNABLES`` set, unless that is already set
(`ssljax.allocator`: XLA:CPU's scratch memory stays mapped across steps;
``SSLJAX_NO_REEXEC=1`` turns it off; ``--debug`` prints the setting).

Rerunning the same command resumes from the latest intact checkpoint in
``--workdir``; ``--mode=evaluate`` runs the offline linear probe and kNN on
it. A mistake in the command or the config ends with one line,
``error: <what is wrong>. <how to fix it>``, and exit status 2 (``--debug``
shows the traceback, which is also written to ``<workdir>/error.log``).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from absl import app, flags
from ml_collections import config_flags

from ssljax import allocator

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/...).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, results).")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "Disable the progress bar.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "evaluate"],
                          "'train' (pretrain, resume if possible, evaluate) or 'evaluate' "
                          "(offline linear probe + kNN from the latest checkpoint in --workdir).")
_DEBUG = flags.DEFINE_bool("debug", False, "Show the full traceback of errors.")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False,
                                  "Print the effective config (after --config.key=value overrides) "
                                  "as JSON and exit; needs no --workdir and reads no data.")


EXIT_USER_ERROR = 2

# Persistent XLA compilation cache: a rerun (resume, another workdir, the same
# config) loads the compiled train step instead of compiling it again.
CACHE_ENV = "SSLJAX_COMPILATION_CACHE"


def enable_compilation_cache() -> str | None:
  """Turns on JAX's persistent compilation cache; returns its directory (None: off).

  The directory is ``$SSLJAX_COMPILATION_CACHE`` if set (``''``, ``0`` or
  ``off`` disable the cache; the test suite sets it to ``off``), else
  ``$XDG_CACHE_HOME/ssljax/jax`` (``~/.cache/ssljax/jax``). Every program
  that compiles in more than 0.5 s is cached (the ConvNet train step compiles
  in seconds; tiny programs are not worth the disk).
  """
  path = os.environ.get(CACHE_ENV)
  if path is None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "ssljax", "jax")
  if path.strip().lower() in ("", "0", "off", "false", "none"):
    return None
  import jax
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path


def _user_error(message: str, workdir: str | None = None) -> None:
  """Prints ``error: message`` on stderr, keeps the traceback in the workdir, exits 2."""
  if workdir and os.path.isdir(workdir):
    try:
      with open(os.path.join(workdir, "error.log"), "a", encoding="utf-8") as f:
        f.write(traceback.format_exc() + "\n")
    except OSError:
      pass
  print(f"error: {message}", file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


def _config_override_error(argv, err) -> str:
  """One line for a ``--config.a.b=v`` override that names no config field."""
  key = str(err).strip("\"'")
  bad = next((a for a in argv if a.startswith("--config.") and f".{key}" in a.split("=")[0]), None)
  return (f"{bad or 'a --config.* override'} names no config field ({key!r}). "
          "See the valid fields with --print_config.")


def parse_flags(argv):
  """absl's flag parsing, with one-line errors instead of tracebacks."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    if "Traceback" in text:  # a config file's get_config raised: keep its own message
      flag = text.split(":", 1)[0].removeprefix("flag ")
      last = [l for l in text.splitlines() if l.strip() and not l.startswith(" ")][-1]
      text = f"{flag}: {last.split(': ', 1)[-1]}"
    print(f"error: {text.rstrip('.')}. See --helpshort.", file=sys.stderr)
  except (AttributeError, KeyError) as e:  # ml_collections: unknown field in an override
    print(f"error: {_config_override_error(argv, e)}", file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


def _load_config():
  """The --config ConfigDict; a file that is missing or fails to build is a one-line error."""
  path = config_flags.get_config_filename(flags.FLAGS["config"]).split(":", 1)[0]
  if not os.path.exists(path):
    _user_error(f"no config file {path}. Config files live under configs/<dataset>/<method>.py.")
  try:
    config = _CONFIG.value
    config.get("method")  # ml_collections loads the file lazily; make it fail here
  except OSError as e:
    cause = e.__cause__ or e.__context__ or e
    _user_error(f"{path} could not be built: {' '.join(str(cause).split())}")
  return config


def main(argv):
  if len(argv) > 1:
    _user_error(f"unexpected arguments {argv[1:]}. Flags are written --name=value.")
  if _DEBUG.value:
    print(f"[ssljax] {allocator.describe()}", file=sys.stderr)
  if _PRINT_CONFIG.value and _CONFIG.value is not None:
    print(_load_config().to_json_best_effort(indent=2))
    return
  if _CONFIG.value is None or _WORKDIR.value is None:
    _user_error("both --config=configs/<dataset>/<method>.py and --workdir=DIR are required.")
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
  # Orbax and TFDS log every file operation at INFO through absl; keep warnings only.
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  from ssljax import errors
  from ssljax.train import workdir as workdir_lib
  config, workdir = _load_config(), _WORKDIR.value
  try:  # refuse a busy or unusable workdir at once, before JAX and the data load
    with workdir_lib.WorkdirLock(workdir, create=False):
      pass
  except errors.WorkdirError as e:
    _user_error(str(e))
  from ssljax.train import loop  # imported late so --help is fast
  enable_compilation_cache()
  try:
    if _MODE.value == "evaluate":
      results = loop.evaluate_checkpoint(config, workdir)
      path = loop.eval_results_path(workdir, results["train/steps"], config.eval.dataset)
    else:
      results = loop.train_and_evaluate(config, workdir, progress=not _NO_PROGRESS.value)
      path = os.path.join(workdir, "results.json")
  except (errors.SSLJaxError, ValueError, FileNotFoundError, NotADirectoryError) as e:
    if _DEBUG.value:
      raise
    _user_error(" ".join(str(e).split()), workdir)
  import jax
  if jax.process_index() == 0 and "stopped_at_step" not in results:
    title = f"{config.method or 'ssl'} on {config.data.name} ({results.get('train/steps')} steps)"
    holdout = config.data.validation_holdout
    split = f"validation ({holdout} held-out train images)" if holdout else "test"
    print(loop.format_results(results, title, method=config.method or "ssl", split=split))
    print(f"\nresults: {path}")


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  allocator.maybe_reexec()  # glibc reads GLIBC_TUNABLES only at start-up; before JAX is imported
  run()
