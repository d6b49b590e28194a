#!/usr/bin/env bash
# Sets up ProofQuest in ./.venv: the CPU build of torch first (a plain `pip install torch`
# would pull a multi-GB CUDA build), then the project and its test tools.
# --browser also installs Debian's Chromium and redis-server for the browser and multi-process tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "torch==2.13.0"
fi
"${PIP[@]}" install -e ".[test]"
# The offline Neuroglancer viewer: only the package's built client is served, never its Python server,
# so its dependencies are skipped (pyproject.toml lists it as the "viewer" extra).
"${PIP[@]}" install --no-deps "neuroglancer>=2.40"

# --browser: what the whole test suite needs from Debian, Chromium for the browser tests and redis-server for
# the tests of several server processes (each test starts its own on 127.0.0.1; without it they are skipped).
if [ "${1:-}" = "--browser" ]; then
  MISSING=()
  [ -x /usr/bin/chromium ] || MISSING+=(chromium)
  command -v redis-server >/dev/null || MISSING+=(redis-server)
  if [ ${#MISSING[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
  fi
fi
