"""vqa_jax.score: deterministic per-video scores from converted weights and trainer workdirs,
per-file errors, CSV, quality-map pictures, and the command line."""

import csv
import functools
import importlib.util
import io
import json
import os
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.conftest import REPO_ROOT
from tests.video_files import random_frames
from tests.video_files import write_video
from vqa_jax import checkpointing
from vqa_jax import convert_weights
from vqa_jax import pretrained
from vqa_jax import score
from vqa_jax import train_step
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


def init_params(model, seeds: tuple[int, ...]) -> list:
  """Smoke-model params for each seed (jitted: op-by-op init compiles far more on CPU)."""
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, 4, 32, 32, 3), jnp.uint8),
                                        train=False)["params"])
  return [init(jax.random.key(seed)) for seed in seeds]


@pytest.fixture(scope="module")
def setup(fast_compile, tmp_path_factory):  # pylint: disable=unused-argument
  """Smoke params saved as a convert_weights checkpoint and as the EMA params of a trainer
  workdir (whose raw params differ), and a folder of videos + a 0-byte file."""
  root = tmp_path_factory.mktemp("score")
  config = smoke_config()
  model = build_model(config.model)
  params, raw_params = init_params(model, (3, 4))
  convert_weights.save_params(str(root / "ckpt"), params)
  state = train_step.create_train_state(raw_params, optax.adamw(1e-3)).replace(
      step=jnp.asarray(6, jnp.int32), ema_params=params)
  manager = checkpointing.checkpoint_manager(str(root / "workdir"))
  checkpointing.save(manager, 6, state, force=True)
  manager.wait_until_finished()
  videos = root / "videos"
  videos.mkdir()
  paths = [write_video(videos / f"v{i}.avi", random_frames(20, 40, 48, seed=i)) for i in range(2)]
  (videos / "notes.txt").write_text("not a video")
  (root / "images").mkdir()
  cv2.imwrite(str(root / "images" / "still.png"), random_frames(1, 40, 48, seed=9)[0])  # for IQA
  empty = root / "empty.mp4"
  empty.write_bytes(b"")
  return dict(root=root, config=config, model=model, params=params, raw_params=raw_params,
              paths=paths, empty=str(empty))


def test_find_videos_walks_folders_and_keeps_files(setup):
  found = list(score.find_videos([str(setup["root"] / "videos"), setup["empty"]]))
  assert found == setup["paths"] + [setup["empty"]]
  assert list(score.find_videos([str(setup["root"] / "images")])) == [
      str(setup["root"] / "images" / "still.png")]  # images score as 1-frame clips


def test_score_is_deterministic_and_matches_direct_apply(setup):
  config, model, params = setup["config"], setup["model"], setup["params"]
  scorer = score.make_scorer(config, convert_weights.load_params(str(setup["root"] / "ckpt")))
  path = setup["paths"][0]
  first, second = scorer(path), scorer(path)
  assert first == second
  clips = sampling.sample_clips(path, config.sampling, config.sampling.num_clips_eval)
  assert clips.shape == (2, 4, 32, 32, 3)
  quality_map = jax.jit(functools.partial(model.apply, train=False))({"params": params}, clips)
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


def test_workdir_ema_scores_like_converted_weights_and_raw_differs(setup):
  runs = {}
  for name, checkpoint, use_ema in (("converted", "ckpt", True), ("ema", "workdir", True),
                                    ("raw", "workdir", False)):
    out = io.StringIO()
    assert score.run(setup["config"], str(setup["root"] / checkpoint), setup["paths"], out=out,
                     use_ema=use_ema) == 0
    runs[name] = [json.loads(line)["score"] for line in out.getvalue().splitlines()]
  assert runs["ema"] == runs["converted"]
  raw_scorer = score.make_scorer(setup["config"], setup["raw_params"])
  assert runs["raw"] == [raw_scorer(path) for path in setup["paths"]]
  assert runs["raw"] != runs["ema"]


def test_mismatched_checkpoint_names_the_keys(setup, tmp_path):
  config = smoke_config()
  config.model.head_hidden = 8
  other = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                 convert_weights.abstract_params(config.model))
  convert_weights.save_params(str(tmp_path / "other"), other)
  with pytest.raises(pretrained.CheckpointError) as error:
    score.run(setup["config"], str(tmp_path / "other"), setup["paths"], out=io.StringIO())
  message = str(error.value)
  assert str(tmp_path / "other") in message
  assert "head/fc_hid/kernel: saved (1, 1, 1, 32, 8) vs model (1, 1, 1, 32, 16)" in message
  assert "head/fc_last/kernel: saved (1, 1, 1, 8, 1) vs model (1, 1, 1, 16, 1)" in message


def test_quality_map_mean_is_the_json_score(setup):
  config = setup["config"]
  map_fn = score.make_map_fn(config, setup["params"])
  out = io.StringIO()
  score.run(config, str(setup["root"] / "ckpt"), setup["paths"], out=out)
  json_scores = [json.loads(line)["score"] for line in out.getvalue().splitlines()]
  for path, json_score in zip(setup["paths"], json_scores):
    quality_map = score.video_quality_map(config, map_fn, path)
    # 2 clips; 4 frames / temporal patch 2; 32 pixels / patch 4 / one 2x2 merge.
    assert quality_map.shape == (2, 2, 4, 4)
    assert float(np.mean(quality_map, dtype=np.float64)) == json_score
    np.testing.assert_array_equal(quality_map, score.video_quality_map(config, map_fn, path))


def test_quality_map_paths():
  assert score.quality_map_paths("/o/map.png", ["/a/v.mp4"]) == ["/o/map.png"]
  assert score.quality_map_paths("/o/map", ["/a/v.mp4"]) == ["/o/map.png"]
  assert score.quality_map_paths("/o/map.png", ["/a/v.mp4", "/b/v.avi", "/b/w.mkv"]) == [
      "/o/map-v.png", "/o/map-v-2.png", "/o/map-w.png"]


def test_quality_map_pictures(setup, tmp_path):
  out = io.StringIO()
  one = tmp_path / "one.png"
  assert score.run(setup["config"], str(setup["root"] / "ckpt"), setup["paths"][:1], out=out,
                   quality_map_path=str(one)) == 0
  assert json.loads(out.getvalue())["quality_map"] == str(one)
  # 2 clips: (2 panels * 3 in + 1.2 in colour bar) x (2 * 3 in + 0.6 in title) at 100 dpi.
  assert cv2.imread(str(one)).shape == (660, 720, 3)
  out = io.StringIO()
  score.run(setup["config"], str(setup["root"] / "ckpt"), [str(setup["root"] / "videos")],
            out=out, quality_map_path=str(tmp_path / "many.png"))
  drawn = [json.loads(line)["quality_map"] for line in out.getvalue().splitlines()]
  assert drawn == [str(tmp_path / "many-v0.png"), str(tmp_path / "many-v1.png")]
  assert all(cv2.imread(path).shape == (660, 720, 3) for path in drawn)


def test_command_line(setup, tmp_path):
  """--noema on a trainer workdir scores with its raw params; --quality-map draws per video."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  proc = subprocess.run(
      [sys.executable, "-m", "vqa_jax.score", f"--config={SMOKE}",
       f"--checkpoint={setup['root'] / 'workdir'}", "--noema",
       f"--quality-map={tmp_path / 'map.png'}", setup["paths"][0], setup["empty"]],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
  lines = [json.loads(line) for line in proc.stdout.splitlines()]
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert "trainer checkpoint at step 6" in proc.stderr and "'params'" in proc.stderr
  assert lines[0]["path"] == setup["paths"][0]
  raw_score = score.make_scorer(setup["config"], setup["raw_params"])(setup["paths"][0])
  np.testing.assert_allclose(lines[0]["score"], raw_score, rtol=1e-5)
  assert lines[0]["quality_map"] == str(tmp_path / "map-v0.png")
  assert (tmp_path / "map-v0.png").is_file()
  assert lines[1]["path"] == setup["empty"] and "0 bytes" in lines[1]["error"]
  assert not (tmp_path / "map-empty.png").exists()
