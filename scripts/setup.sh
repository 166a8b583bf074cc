#!/usr/bin/env bash
# Sets up ssljax on a fresh Debian/Ubuntu machine with Python >= 3.10:
#   * Debian's dataset-fashion-mnist package (the offline default data),
#   * a virtual environment in .venv with ssljax and its extras
#     (SSLJAX_EXTRAS, default "test"; e.g. SSLJAX_EXTRAS=test,notebook).
# Idempotent and quiet: pip runs only when setup.py, the extras, the Python or
# the checkout's path changed since the last successful install (a stamp in
# .venv), or when the installed stack no longer imports; its output goes to
# .venv/ssljax-setup.log. A second run prints one line.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

EXTRAS="${SSLJAX_EXTRAS:-test}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

need_apt=()
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
STAMP=.venv/ssljax-setup.stamp
LOG=.venv/ssljax-setup.log
key="$({ cat setup.py; echo "extras=$EXTRAS"; pwd; .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)"

# The installed distribution (not the checkout's ssljax/, which imports from
# here anyway) and the stack it needs.
check() {
  .venv/bin/python -c "
import importlib.metadata as m, jax, flax, optax, tensorflow_datasets, grain, orbax.checkpoint, cv2
print('ssljax', m.version('ssljax') + ', jax', jax.__version__, 'on', jax.default_backend())" \
    2>>"$LOG"
}

if [ "$(cat "$STAMP" 2>/dev/null)" = "$key" ] && info="$(check)"; then
  echo "[setup] ok: $info (.venv up to date)"
  exit 0
fi
echo "[setup] pip install -e .[$EXTRAS] into .venv (log: $LOG)"
rm -f "$STAMP"
if ! { .venv/bin/python -m pip install -q --upgrade pip \
       && .venv/bin/python -m pip install -q -e ".[$EXTRAS]"; } >"$LOG" 2>&1; then
  tail -n 25 "$LOG" >&2
  echo "[setup] pip install failed; the whole output is in $LOG" >&2
  exit 1
fi
if ! info="$(check)"; then
  tail -n 25 "$LOG" >&2
  echo "[setup] the installed stack does not import; see $LOG" >&2
  exit 1
fi
echo "$key" >"$STAMP"
echo "[setup] ok: $info"
