#!/usr/bin/env bash
# README command 2: set up .venv, then run the test suite. Slow and integration (subprocess) tests are
# excluded: `-m "not slow"` adds the integration ones, `-m slow` runs the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh
exec .venv/bin/python -m pytest -q "$@"
