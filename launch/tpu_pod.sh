#!/usr/bin/env bash
# Runs the same training command on every worker of a Cloud TPU VM pod slice.
#
#   bash launch/tpu_pod.sh TPU_NAME ZONE --config=configs/fast_vqa_b.py --workdir=/mnt/shared/run1 \
#       --config.data.label_files.train=...
#
# Prerequisites on every worker: this repository at ~/vqa_jax with `pip install -r requirements.txt
# "jax[tpu]"` into ~/vqa_jax/.venv, the videos and label files at the same paths, and a --workdir on a
# file system all workers share (orbax writes one checkpoint from all hosts). The workers find each
# other through JAX's TPU cluster detection (VQA_JAX_AUTO_DISTRIBUTED=1); each reads its own slice of
# every batch, and worker 0 alone writes logs and metrics. Exit status 75: the workers were
# interrupted (SIGTERM / SIGINT, e.g. a maintenance event) after saving a checkpoint; rerun to resume.
# Big-model switches (config flags): --config.model.dtype=bfloat16 (bf16 compute, float32 params) and
# --config.model.remat=True (activation checkpointing per Swin block); the footprint of the compiled
# step is printed before step 1 (BENCHMARKS.md: bf16 + remat cuts the AWP step's memory ~5x).
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: $0 TPU_NAME ZONE [vqa_jax.main flags...]" >&2; exit 2; }
tpu=$1
zone=$2
shift 2
printf -v flags ' %q' "$@"
gcloud compute tpus tpu-vm ssh "${tpu}" --zone="${zone}" --worker=all --command \
  "cd ~/vqa_jax && VQA_JAX_AUTO_DISTRIBUTED=1 .venv/bin/python -m vqa_jax.main${flags}"
