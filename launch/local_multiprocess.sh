#!/usr/bin/env bash
# Starts N training processes on this machine (127.0.0.1), each with D simulated CPU devices, joined
# by jax.distributed with gloo collectives: a multi-host run in miniature.
#
#   bash launch/local_multiprocess.sh N D --config=configs/smoke.py --workdir=/tmp/mh [--config.x=y]
#
# Every process runs `python -m vqa_jax.main` with the same flags; process 0 alone writes logs and
# metric files. The exit status is the first failing process's, or 0 (75: interrupted by SIGTERM /
# SIGINT after saving a checkpoint; rerun to resume).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { echo "usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS [vqa_jax.main flags...]" >&2; exit 2; }
num_processes=$1
devices=$2
shift 2
python=${PYTHON:-.venv/bin/python}
port=${VQA_JAX_PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < num_processes; i++)); do
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=${devices}" \
  VQA_JAX_COORDINATOR="127.0.0.1:${port}" VQA_JAX_NUM_PROCESSES="${num_processes}" \
  VQA_JAX_PROCESS_ID="${i}" "${python}" -m vqa_jax.main "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "${pid}" || { code=$?; [[ ${status} -eq 0 ]] && status=${code}; }
done
exit "${status}"
