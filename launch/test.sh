#!/usr/bin/env bash
# README command 2: set up .venv, then run the test suite (slow tests excluded; add `-m slow` for them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh
exec .venv/bin/python -m pytest -q "$@"
