"""vqa_jax.score: deterministic per-video scores, per-file errors, CSV, and the command line."""

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.video_files import random_frames
from tests.video_files import write_video
from vqa_jax import convert_weights
from vqa_jax import score
from vqa_jax.data import sampling
from vqa_jax.models.model import build_model
from vqa_jax.models.model import video_score

SMOKE = REPO_ROOT / "configs" / "smoke.py"


def smoke_config():
  """configs/smoke.py's config (2 eval clips of 4 frames, 2x2 fragments of 16 pixels)."""
  spec = importlib.util.spec_from_file_location("smoke_cfg", SMOKE)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.fixture(scope="module")
def setup(fast_compile, tmp_path_factory):  # pylint: disable=unused-argument
  """Smoke params saved as a convert_weights checkpoint, and a folder of videos + a 0-byte file."""
  root = tmp_path_factory.mktemp("score")
  config = smoke_config()
  model = build_model(config.model)
  params = model.init(jax.random.key(3), jnp.zeros((1, 4, 32, 32, 3), jnp.uint8),
                      train=False)["params"]
  convert_weights.save_params(str(root / "ckpt"), params)
  videos = root / "videos"
  videos.mkdir()
  paths = [write_video(videos / f"v{i}.avi", random_frames(20, 40, 48, seed=i)) for i in range(2)]
  (videos / "notes.txt").write_text("not a video")
  empty = root / "empty.mp4"
  empty.write_bytes(b"")
  return dict(root=root, config=config, model=model, params=params, paths=paths, empty=str(empty))


def test_find_videos_walks_folders_and_keeps_files(setup):
  found = list(score.find_videos([str(setup["root"] / "videos"), setup["empty"]]))
  assert found == setup["paths"] + [setup["empty"]]


def test_score_is_deterministic_and_matches_direct_apply(setup):
  config, model, params = setup["config"], setup["model"], setup["params"]
  scorer = score.make_scorer(config, convert_weights.load_params(str(setup["root"] / "ckpt")))
  path = setup["paths"][0]
  first, second = scorer(path), scorer(path)
  assert first == second
  clips = sampling.sample_clips(path, config.sampling, config.sampling.num_clips_eval)
  assert clips.shape == (2, 4, 32, 32, 3)
  quality_map = model.apply({"params": params}, clips, train=False)
  expected = float(jnp.mean(video_score(quality_map)))
  np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
  assert scorer(setup["paths"][1]) != first


def test_run_reports_failures_and_writes_csv(setup, tmp_path):
  out = io.StringIO()
  csv_path = tmp_path / "scores.csv"
  code = score.run(setup["config"], str(setup["root"] / "ckpt"),
                   [str(setup["root"] / "videos"), setup["empty"]], str(csv_path), out=out)
  lines = [json.loads(line) for line in out.getvalue().splitlines()]
  assert code == 1
  assert [line["path"] for line in lines] == setup["paths"] + [setup["empty"]]
  assert all(isinstance(line["score"], float) for line in lines[:2])
  assert "empty.mp4" in lines[2]["error"] and "score" not in lines[2]
  rows = list(csv.reader(csv_path.open()))
  assert rows[0] == ["path", "score"]
  assert [r[0] for r in rows[1:]] == setup["paths"]
  assert [float(r[1]) for r in rows[1:]] == [line["score"] for line in lines[:2]]


def test_run_succeeds_when_all_readable(setup):
  out = io.StringIO()
  assert score.run(setup["config"], str(setup["root"] / "ckpt"), setup["paths"], out=out) == 0


def test_command_line(setup):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  proc = subprocess.run(
      [sys.executable, "-m", "vqa_jax.score", f"--config={SMOKE}",
       f"--checkpoint={setup['root'] / 'ckpt'}", setup["paths"][0], setup["empty"]],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
  lines = [json.loads(line) for line in proc.stdout.splitlines()]
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert lines[0]["path"] == setup["paths"][0] and "score" in lines[0]
  assert lines[1]["path"] == setup["empty"] and "0 bytes" in lines[1]["error"]
