#!/usr/bin/env bash
# Sets up ssljax on a fresh Debian/Ubuntu machine with Python >= 3.10:
#   * Debian's dataset-fashion-mnist package (the offline default data),
#   * a virtual environment in .venv with ssljax and its test extras.
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

need_apt=()
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "[setup] pip install -e .[test]"
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/python -c "import jax, flax, optax, tensorflow_datasets, grain, orbax.checkpoint; print('[setup] ok: jax', jax.__version__, 'on', jax.default_backend())"
