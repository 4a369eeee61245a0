#!/usr/bin/env bash
# Create the virtual environment and install pointset with its extras.
# open3d's wheel needs a few Debian libraries; they are installed when apt-get is there and we are root.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 libgl1 libegl1 libgomp1 >/dev/null 2>&1 \
        || echo "setup: could not install open3d's system libraries; PCD/Poisson fall back to the core readers" >&2
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[test,open3d]" \
    || { echo "setup: open3d extra failed to install; installing the core only" >&2
         "$VENV/bin/python" -m pip install -q -e ".[test]"; }
"$VENV/bin/pointset" --version
