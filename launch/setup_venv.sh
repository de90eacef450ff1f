#!/usr/bin/env bash
# Creates .venv in the repository root (if missing) and installs the pinned requirements into it.
# REQUIREMENTS=requirements-gpu.txt installs jax with CUDA beside the rest (GPU hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="${REQUIREMENTS:-requirements.txt}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat "$REQUIREMENTS" requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$REQUIREMENTS"
  echo "$want" > "$stamp"
fi
