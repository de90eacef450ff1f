#!/usr/bin/env bash
# README command 1: set up .venv, then train the demo model with AWP on the embedded synthetic
# dataset and print the metrics table. Extra arguments are passed on, e.g. --config.train.steps=200.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh
export TF_CPP_MIN_LOG_LEVEL=2
WORKDIR="${WORKDIR:-runs/demo-$(date +%Y%m%d-%H%M%S)}"
exec .venv/bin/python -m vqa_jax.main --config=configs/demo.py --workdir="$WORKDIR" "$@"
