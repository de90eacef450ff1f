#!/usr/bin/env bash
# The issue-30 device check in one command (bench/mfu_check.py says what it measures):
#   bench/mfu_check.sh OUTDIR [CACHE_DIR] [extra bench/mfu_check.py flags]
# Run from the repository root on the GPU machine; fits 8 minutes on an H200 (--budget_s=420 for
# the measurements, the profile included). Wheels carried in .whl/ (ml_collections: the GPU image
# lacks it) are installed first, when present. CACHE_DIR is a previous run's XLA compilation cache,
# a folder or its OUTDIR/xla_cache.tgz, so that a rerun does not pay the compiles again.
# OUTDIR gets results.jsonl, summary.md, log.txt, profile/op_time.json and xla_cache.tgz (the
# cache folder itself and the raw trace are removed, so that few files come back).
# CPU smoke check: bench/mfu_check.sh /tmp/mfu "" --config=configs/smoke.py --tiny --only=1
set -uo pipefail
PY="${PYTHON:-python3}"  # the interpreter (tests name theirs)
OUTDIR="${1:?usage: bench/mfu_check.sh OUTDIR [CACHE_DIR] [flags]}"
CACHE="${2:-}"
shift $(( $# < 2 ? $# : 2 ))
mkdir -p "$OUTDIR" || exit 1
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/mfu_site .whl/*.whl || { echo "mfu_check: installing .whl/ failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/mfu_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
if [ -n "$CACHE" ] && [ -f "$CACHE" ]; then  # an archived cache: unpack it first
  mkdir -p /tmp/mfu_cache && tar xzf "$CACHE" -C /tmp/mfu_cache \
    || { echo "mfu_check: cannot unpack cache $CACHE" >&2; exit 1; }
  CACHE=/tmp/mfu_cache
fi
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee "$OUTDIR/log.txt"
"$PY" bench/mfu_check.py --out="$OUTDIR" ${CACHE:+--cache_dir="$CACHE"} "$@" 2>&1 \
  | tee -a "$OUTDIR/log.txt"
rc=${PIPESTATUS[0]}
rm -rf "$OUTDIR/profile/plugins"
if [ -d "$OUTDIR/xla_cache" ]; then
  tar czf "$OUTDIR/xla_cache.tgz" -C "$OUTDIR/xla_cache" . && rm -rf "$OUTDIR/xla_cache"
fi
exit "$rc"
