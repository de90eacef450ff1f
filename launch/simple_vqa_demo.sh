#!/usr/bin/env bash
# The SimpleVQA-AWP demo (configs/simple_vqa_demo.py): precompute the motion features of the
# synthetic dataset with a tiny random SlowFast, then train and print the metrics table. Extra
# arguments go to the training command, e.g. --config.train.steps=100.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh
export TF_CPP_MIN_LOG_LEVEL=2
WORKDIR="${WORKDIR:-runs/simple_vqa_demo-$(date +%Y%m%d-%H%M%S)}"
MOTION_DIR="${MOTION_DIR:-$WORKDIR/motion}"
.venv/bin/python -m vqa_jax.simple_vqa_features --config=configs/simple_vqa_demo.py --out="$MOTION_DIR"
exec .venv/bin/python -m vqa_jax.main --config=configs/simple_vqa_demo.py --workdir="$WORKDIR" \
  --config.data.motion_dir="$MOTION_DIR" "$@"
