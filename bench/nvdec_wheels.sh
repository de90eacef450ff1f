#!/usr/bin/env bash
# Prepares bench/nvdec_check.sh's device run, on this (networked) host, from the repository root:
# the cp312 manylinux wheels the GPU host lacks into .whl/ (PyNvVideoCodec, grain, array-record,
# ml_collections, portpicker, importlib_resources) and the benchmark clips of ../shared/videos into
# .benchvids/. Both folders are git-ignored (/.whl/ in .gitignore; add /.benchvids/ to
# .git/info/exclude) and travel with the device call's `carry`.
set -euo pipefail
PY="${PYTHON:-python3}"
mkdir -p .whl .benchvids
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  PyNvVideoCodec==2.2.4 grain==0.2.18 array-record==0.8.6 ml_collections==1.1.0 portpicker \
  importlib_resources==7.1.0
cp ../shared/videos/lsvq_yfcc-batch3_1724_portrait.mp4 ../shared/videos/konvid_10053703034.mp4 \
  ../shared/videos/tiny_192x144.mp4 .benchvids/
exclude="$(git rev-parse --git-path info/exclude)"
grep -qx "/.benchvids/" "$exclude" 2>/dev/null || echo "/.benchvids/" >> "$exclude"
du -sh .whl .benchvids
