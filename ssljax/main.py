"""Command line: ``python -m ssljax.main --config=configs/<dataset>/<method>.py --workdir=DIR``.

Config fields are overridden with ``--config.key=value`` (ml_collections
config flags), e.g. ``--config.data.batch_size=512 --config.num_epochs=100``.
A config file may take an argument after a colon:
``--config=configs/fashion_mnist/vicreg.py:runlocal``. ``--print_config`` prints
the effective config (after the overrides) as JSON and exits.

Rerunning the same command resumes from the latest checkpoint in ``--workdir``;
``--mode=evaluate`` runs the offline linear probe and kNN on the latest checkpoint.
"""

from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/...).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, results).")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "Disable the progress bar.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "evaluate"],
                          "'train' (pretrain, resume if possible, evaluate) or 'evaluate' "
                          "(offline linear probe + kNN from the latest checkpoint in --workdir).")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False,
                                  "Print the effective config (after --config.key=value overrides) "
                                  "as JSON and exit; needs no --workdir and reads no data.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _PRINT_CONFIG.value and _CONFIG.value is not None:
    print(_CONFIG.value.to_json_best_effort(indent=2))
    return
  if _CONFIG.value is None or _WORKDIR.value is None:
    raise app.UsageError("both --config=configs/<dataset>/<method>.py and --workdir=DIR are required")
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  # Orbax and TFDS log every file operation at INFO through absl; keep ours only.
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  from ssljax.train import loop  # imported late so --help is fast
  config = _CONFIG.value
  if _MODE.value == "evaluate":
    results = loop.evaluate_checkpoint(config, _WORKDIR.value)
  else:
    results = loop.train_and_evaluate(config, _WORKDIR.value, progress=not _NO_PROGRESS.value)
  import jax
  if jax.process_index() == 0 and "stopped_at_step" not in results:
    title = f"{config.method or 'ssl'} on {config.data.name} ({results.get('train/steps')} steps)"
    print(loop.format_results(results, title))
    print(f"\nresults: {os.path.join(_WORKDIR.value, 'results.json')}")


def run():
  app.run(main)


if __name__ == "__main__":
  run()
