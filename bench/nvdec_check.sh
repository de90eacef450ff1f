#!/usr/bin/env bash
# Issue 29's device check: NVDEC beside the CPU workers on the GPU host, in one command (< 8 min on
# an H200). Usage, from the repository root:
#   bash bench/nvdec_check.sh OUTDIR [CACHE_DIR]
# OUTDIR receives pixels.json (NVDEC vs OpenCV, max absolute pixel difference per clip and colour
# conversion), throughput.json (loader clips/s for the decoders opencv / nvdec / hybrid, the step
# alone, and end to end with the hybrid loader: clips/s and input wait), the logs, and xla/, XLA's
# persistent compilation cache. CACHE_DIR, a cache folder handed back from an earlier run, is
# copied into OUTDIR/xla first (or unpacked, when it holds the xla_cache.tgz.* parts that
# NVDEC_CHECK_PACK_CACHE=1 leaves), so a rerun does not pay the compile again.
# Prepare on the host with network (once): bash bench/nvdec_wheels.sh (wheels into .whl/, the clips
# of ../shared/videos into .benchvids/); the device call then carries .whl and .benchvids.
# NVDEC_CHECK_DRY_RUN=1: the CPU rehearsal: no wheels, the fake decoder (VQA_JAX_FAKE_NVDEC=1:
# OpenCV frames as device arrays), the smoke model and a few steps; every stage runs.
set -uo pipefail
OUTDIR="${1:?usage: bash bench/nvdec_check.sh OUTDIR [CACHE_DIR]}"
CACHE_DIR="${2:-}"
DRY_RUN="${NVDEC_CHECK_DRY_RUN:-0}"
mkdir -p "$OUTDIR/xla" || exit 1
if [[ -n "$CACHE_DIR" ]]; then
  [[ -d "$CACHE_DIR" ]] || { echo "CACHE_DIR $CACHE_DIR is not a folder" >&2; exit 2; }
  if compgen -G "$CACHE_DIR/xla_cache.tgz.*" >/dev/null; then  # a packed cache (see below)
    cat "$CACHE_DIR"/xla_cache.tgz.* | tar -xzf - -C "$OUTDIR/xla" || exit 1
  else
    cp -r "$CACHE_DIR/." "$OUTDIR/xla/" || exit 1
  fi
  echo "compilation cache: $(ls "$OUTDIR/xla" | wc -l) entries from $CACHE_DIR"
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
PY="${PYTHON:-python3}"
VIDS=.benchvids
if [[ "$DRY_RUN" == 1 ]]; then
  export VQA_JAX_FAKE_NVDEC=1 PYTHONPATH=.
  VIDS="${NVDEC_CHECK_VIDEOS:-../shared/videos}"
  PIXEL_FLAGS=(--fake)
  RUN_FLAGS=(--config=configs/smoke.py --steps=6 --log_every=2
             --skip_intervals=1 --step_repeats=2 --eval_videos=3 --workers=1
             --config.data.nvdec_threads=2
             --videos="$VIDS/tiny_192x144.mp4:6")
else
  ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/: run bench/nvdec_wheels.sh here first and carry .whl" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:.
  # grain needs protobuf >= 5.28.3: bring the carried one only if the host's is older.
  "$PY" -c "import google.protobuf as p, sys; sys.exit(tuple(map(int, p.__version__.split('.')[:2])) < (5, 29))" \
    || "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl_pb/*.whl
  PIXEL_FLAGS=()
  RUN_FLAGS=(--config=configs/fast_vqa_b.py --config.model.dtype=bfloat16 --steps=40 --log_every=8
             --workers=15 --eval_videos=4 --config.data.nvdec_threads=8
             --videos="$VIDS/lsvq_yfcc-batch3_1724_portrait.mp4:32,$VIDS/konvid_10053703034.mp4:12,$VIDS/tiny_192x144.mp4:4")
fi
"$PY" -c "import grain, ml_collections, jax; print('jax', jax.__version__, jax.devices())" || exit 1
[[ "$DRY_RUN" == 1 ]] || "$PY" -c "import PyNvVideoCodec as n; print('PyNvVideoCodec', n.__version__)" || exit 1
nproc; git log -1 --format='commit %H' 2>/dev/null || true
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true

echo "== 1/2 pixels: NVDEC vs OpenCV"
"$PY" bench/nvdec_pixels.py --videos="$VIDS/lsvq_yfcc-batch3_1724_portrait.mp4,$VIDS/konvid_10053703034.mp4,$VIDS/tiny_192x144.mp4" \
  "${PIXEL_FLAGS[@]}" --out="$OUTDIR/pixels.json" 2>&1 | tee "$OUTDIR/pixels_log.txt" | grep -v "^I[0-9]"
pixels_rc=${PIPESTATUS[0]}

echo "== 2/2 loaders (opencv, nvdec, hybrid) and hybrid end to end"
"$PY" bench/train_throughput.py "${RUN_FLAGS[@]}" --loaders=grain --decoders=opencv,nvdec,hybrid \
  --e2e_decoders=hybrid --cache_dir="$OUTDIR/xla" --out="$OUTDIR/throughput.json" \
  > "$OUTDIR/throughput_log.txt" 2>&1
run_rc=$?
grep -E "^device|^step only| input .*clips/s|NVDEC declined|NVDEC:|Error:|Traceback" "$OUTDIR/throughput_log.txt" | tail -30
echo "compilation cache: $(ls "$OUTDIR/xla" | wc -l) entries in $OUTDIR/xla; results in $OUTDIR"
# NVDEC_CHECK_PACK_CACHE=1 (the device call, whose $OUT returns at most 8 files of 16 MiB): the
# cache as OUTDIR/xla_cache.tgz.aa, .ab, ... (15 MiB parts) instead of the folder; hand the folder
# holding the parts back as CACHE_DIR.
if [[ "${NVDEC_CHECK_PACK_CACHE:-0}" == 1 ]]; then
  tar -czf - -C "$OUTDIR/xla" . | split -b 15M - "$OUTDIR/xla_cache.tgz." && rm -rf "$OUTDIR/xla"
  ls -l "$OUTDIR"
fi
exit $(( pixels_rc != 0 ? pixels_rc : run_rc ))
