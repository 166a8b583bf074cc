#!/usr/bin/env bash
# Accelerator check: images/s, step time and MFU of ResNet-18 (32 px), ResNet-50 (224 px) and
# ViT-S/16 (224 px), float32 vs bfloat16, plus the Fashion-MNIST demo's wall time; writes
# experiments/results/accelerator_check.md (or $OUT/accelerator_check.md when $OUT is set).
#
#   bash benchmarks/accelerator_check.sh            # on a GPU / TPU machine
#   bash benchmarks/accelerator_check.sh --quick    # CPU smoke run (tiny shapes, 2 steps)
#
# Other flags go to benchmarks/accelerator_check.py (--models, --steps, --no_demo, --out).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
# --quick only shows that the check runs: skip most XLA optimisations, whose compile time
# dominates on a CPU (the test suite does the same, see conftest.py).
if [[ " $* " == *" --quick "* ]]; then export JAX_DISABLE_MOST_OPTIMIZATIONS="${JAX_DISABLE_MOST_OPTIMIZATIONS:-1}"; fi
# The checkout's ssljax, not another installed copy.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/accelerator_check.py "$@"
