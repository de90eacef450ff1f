"""bench/nvdec_check.sh rehearsed on the CPU (NVDEC_CHECK_DRY_RUN=1: the fake decoder, smoke model)."""

import json
import os
import subprocess
import sys

import pytest
from tests.helpers import REPO_ROOT
from tests.video_files import random_frames
from tests.video_files import write_mp4

CLIPS = ("lsvq_yfcc-batch3_1724_portrait.mp4", "konvid_10053703034.mp4", "tiny_192x144.mp4")


@pytest.mark.integration
@pytest.mark.slow
def test_dry_run_writes_every_result_and_reuses_the_cache(tmp_path):
  videos = tmp_path / "videos"
  videos.mkdir()
  for seed, name in enumerate(CLIPS):
    write_mp4(videos / name, random_frames(20, 40, 56, seed=seed))
  env = {**os.environ, "NVDEC_CHECK_DRY_RUN": "1", "NVDEC_CHECK_VIDEOS": str(videos),
         "PYTHON": sys.executable}
  run = lambda out, *cache: subprocess.run(
      ["bash", "bench/nvdec_check.sh", str(out), *map(str, cache)], cwd=REPO_ROOT, env=env,
      capture_output=True, text=True, timeout=900, check=False)
  first = run(tmp_path / "first")
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  pixels = json.loads((tmp_path / "first" / "pixels.json").read_text())
  assert pixels["worst"] == {"fake": 0} and len(pixels["rows"]) == 3
  rows = json.loads((tmp_path / "first" / "throughput.json").read_text())["rows"]
  assert [r["decoder"] for r in rows] == ["opencv", "nvdec", "hybrid"]
  assert all(r["input_clips_per_s"] > 0 for r in rows)
  assert 0 <= rows[2]["input_wait_fraction"] <= 1 and rows[2]["e2e_clips_per_s"] > 0
  cache = sorted(os.listdir(tmp_path / "first" / "xla"))
  assert cache
  # A rerun handed the cache starts from it (and the script says so).
  second = run(tmp_path / "second", tmp_path / "first" / "xla")
  assert second.returncode == 0, second.stdout[-3000:]
  assert f"compilation cache: {len(cache)} entries from" in second.stdout
  assert set(cache) <= set(os.listdir(tmp_path / "second" / "xla"))
  # Packed for the device call's file limits, and unpacked when handed back.
  env["NVDEC_CHECK_PACK_CACHE"] = "1"
  packed = run(tmp_path / "packed", tmp_path / "second" / "xla")
  assert packed.returncode == 0, packed.stdout[-3000:]
  parts = [p for p in os.listdir(tmp_path / "packed") if p.startswith("xla_cache.tgz.")]
  assert parts and not (tmp_path / "packed" / "xla").exists()
  assert len(os.listdir(tmp_path / "packed")) <= 8
  del env["NVDEC_CHECK_PACK_CACHE"]
  unpacked = run(tmp_path / "unpacked", tmp_path / "packed")
  assert unpacked.returncode == 0, unpacked.stdout[-3000:]
  assert set(cache) <= set(os.listdir(tmp_path / "unpacked" / "xla"))
  missing = run(tmp_path / "third", tmp_path / "nowhere")
  assert missing.returncode == 2 and "is not a folder" in missing.stderr
