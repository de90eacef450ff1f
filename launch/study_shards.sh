#!/usr/bin/env bash
# The study's seeds in SHARDS processes side by side (default: one per core), then one report over
# every seed. Each shard is `python -m vqa_jax.study --out=OUT/shard_K --seeds=...`; a shard that is
# rerun skips the runs whose records exist, so a stopped study resumes with the same command. The
# merge copies every shard's run records into OUT and runs the study there once more: every record
# exists, so it trains nothing and writes OUT/report.md. With a pretext stage (the tiny scale) every
# shard trains its own, from the same data seed and steps.
#
#   bash launch/study_shards.sh OUT                                  # configs/study.py
#   CONFIG=study:tiny SHARDS=2 bash launch/study_shards.sh OUT       # the test suite's scale
#   SHARD_SEEDS="0,1,2,3 4,5,6,7" bash launch/study_shards.sh OUT   # these seeds per shard instead
#
# SHARD_SEEDS (space-separated, one comma list per shard) replaces the round-robin dealing, e.g. to
# balance the work left when some seeds are done. A shard's seeds are part of its registered design,
# so a rerun into the same OUT must deal them the same way.
#
# Extra arguments go to every shard and to the merge (e.g. --variants=baseline,awp_1e-4).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash launch/study_shards.sh OUT [study flags]}
shift
python=${PYTHON:-.venv/bin/python}
config=${CONFIG:-study}
shards=${SHARDS:-$(nproc)}
xla_cache="$out/xla_cache"

# The config's seeds, dealt round-robin to the shards ("0,2,4,6" and "1,3,5,7" for two).
if [ -n "${SHARD_SEEDS:-}" ]; then
  read -r -a shard_seeds <<< "$SHARD_SEEDS"
else
  mapfile -t shard_seeds < <("$python" -c "
from vqa_jax.config import config_files
seeds = list(config_files.load('$config').study.seeds)
for k in range($shards):
  if seeds[k::$shards]:
    print(','.join(str(s) for s in seeds[k::$shards]))")
fi

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for k in "${!shard_seeds[@]}"; do
  echo "shard $k: seeds ${shard_seeds[$k]} -> $out/shard_$k (log $out/shard_$k.log)"
  mkdir -p "$out"
  "$python" -m vqa_jax.study --config="$config" --out="$out/shard_$k" \
    --seeds="${shard_seeds[$k]}" --xla_cache="$xla_cache" "$@" > "$out/shard_$k.log" 2>&1 &
  pids+=($!)
done
for k in "${!pids[@]}"; do
  if ! wait "${pids[$k]}"; then
    echo "shard $k failed; its log: $out/shard_$k.log" >&2
    exit 1
  fi
done
trap - EXIT

mkdir -p "$out/cross/runs" "$out/finetune/runs"
for k in "${!shard_seeds[@]}"; do
  for protocol in cross finetune; do
    if [ -d "$out/shard_$k/$protocol/runs" ]; then
      cp "$out/shard_$k/$protocol/runs/"*.json "$out/$protocol/runs/"
    fi
  done
  # The baseline-to-AWP interpolation is of the first seed, which the first shard holds.
  if [ -f "$out/shard_$k/cross/interpolation.json" ] && [ ! -f "$out/cross/interpolation.json" ]; then
    cp "$out/shard_$k/cross/interpolation.json" "$out/cross/"
  fi
done
"$python" -m vqa_jax.study --config="$config" --out="$out" --xla_cache="$xla_cache" "$@"
