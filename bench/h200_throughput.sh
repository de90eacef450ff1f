#!/usr/bin/env bash
# The GPU-host figures of bench/train_throughput.py: FAST-VQA-B, AWP, bf16, batch 16, the grain
# loader (the GPU host has no TensorFlow), real H.264 clips under a label file, the 720p clip
# dominant. Run from the repository root on the GPU host, with the small wheels it lacks in .whl/
# (ml_collections, grain, array-record, portpicker, importlib_resources; see BENCHMARKS.md) and the
# clips of ../shared/videos copied into .benchvids/. Results go to $OUT (default /tmp/out).
set -uo pipefail
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
# grain needs protobuf >= 5.28.3: bring the carried one only if the host's is older.
python3 -c "import google.protobuf as p, sys; sys.exit(tuple(map(int, p.__version__.split('.')[:2])) < (5, 29))" \
  || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl_pb/*.whl
python3 -c "import grain, ml_collections, jax, google.protobuf as p; print('jax', jax.__version__, jax.devices(), 'protobuf', p.__version__)" || exit 1
python3 -c "import tensorflow" 2>/dev/null && echo "tensorflow: present" || echo "tensorflow: absent"
nproc
python3 bench/train_throughput.py --config=configs/fast_vqa_b.py --config.model.dtype=bfloat16 \
  --loaders=grain --workers=15,8 --steps=40 --log_every=8 --eval_videos=4 \
  --videos=.benchvids/lsvq_yfcc-batch3_1724_portrait.mp4:32,.benchvids/konvid_10053703034.mp4:12,.benchvids/tiny_192x144.mp4:4 \
  --out="$OUT/throughput_h200.json" > "$OUT/throughput_log.txt" 2>&1
rc=$?
grep -E "^device|^step only|clips/s \(startup| x[0-9]+ +input|Error|error" "$OUT/throughput_log.txt" | tail -40
exit $rc
