"""vqa_jax.score: deterministic per-video scores from converted weights and trainer workdirs,
per-file errors, CSV, quality-map pictures, and the command line."""

import csv
import functools
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import REPO_ROOT
from tests.helpers import init_params
from tests.helpers import load_config
from tests.video_files import labelled_videos
from tests.video_files import random_frames
from tests.video_files import write_video
from vqa_jax import families
from vqa_jax.scoring import calibration
from vqa_jax.training import checkpointing
from vqa_jax.convert import convert_weights
from vqa_jax.convert import pretrained
from vqa_jax.convert import state_dicts
from vqa_jax.scoring import quality_map as quality_map_lib
from vqa_jax.scoring import run_calibration
from vqa_jax.scoring import score
from vqa_jax.runtime import sharding
from vqa_jax.training import train_step
from vqa_jax.data import sampling
from vqa_jax.data import video_io
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.models.fast_vqa import video_score

SMOKE = REPO_ROOT / "configs" / "smoke.py"


@pytest.fixture(scope="module")
def setup(fast_compile, tmp_path_factory):  # pylint: disable=unused-argument
  """Smoke params saved as a convert_weights checkpoint and as the EMA params of a trainer
  workdir (whose raw params differ), and a folder of videos + a 0-byte file."""
  root = tmp_path_factory.mktemp("score")
  config = load_config("smoke")
  model = build_model(config.model)
  params, raw_params = init_params(model, (3, 4))
  state_dicts.save_variables(str(root / "ckpt"), {"params": params})
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
  scorer = score.make_scorer(config, pretrained.load_params(str(setup["root"] / "ckpt")))
  path = setup["paths"][0]
  first, second = scorer(path), scorer(path)
  assert first == second
  clips = sampling.sample_clips(path, config.sampling, config.sampling.num_clips_eval)
  assert clips.shape == (2, 4, 32, 32, 3)
  quality_map = jax.jit(functools.partial(model.apply, train=False))({"params": params}, clips)
  expected = float(jnp.mean(video_score(quality_map)))
  np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
  assert scorer(setup["paths"][1]) != first


def test_run_reports_failures_and_writes_csv(setup, tmp_path, capsys):
  out = io.StringIO()
  csv_path = tmp_path / "new" / "folder" / "scores.csv"  # made by run
  code = score.run(setup["config"], str(setup["root"] / "ckpt"),
                   [str(setup["root"] / "videos"), setup["empty"]], str(csv_path), out=out)
  lines = [json.loads(line) for line in out.getvalue().splitlines()]
  assert code == 1
  assert [line["path"] for line in lines] == setup["paths"] + [setup["empty"]]
  assert all(isinstance(line["score"], float) for line in lines[:2])
  # Converted smoke weights match no upstream model: no calibration, and the output says so.
  assert all(line["mos"] is None and line["score_01"] is None for line in lines[:2])
  assert "empty.mp4" in lines[2]["error"] and "score" not in lines[2]
  rows = list(csv.DictReader(csv_path.open()))
  assert [r["path"] for r in rows] == setup["paths"] + [setup["empty"]]
  assert [float(r["score"]) for r in rows[:2]] == [line["score"] for line in lines[:2]]
  assert rows[2]["score"] == "" and rows[2]["error"] == lines[2]["error"]
  assert "0 bytes" in rows[2]["error"]  # the failed file is in the CSV with its reason
  assert int(rows[0]["size"]) == os.path.getsize(setup["paths"][0])
  progress = capsys.readouterr().err  # the tqdm bar: count, rate, failures
  assert "3/3" in progress and "video/s" in progress and "failed=1" in progress
  assert "no calibration" in progress


def test_a_video_decoding_short_is_scored_with_a_warning(setup, tmp_path, capsys):
  whole = write_video(tmp_path / "whole.mkv", random_frames(30, 40, 48, seed=5))
  data = open(whole, "rb").read()
  cut = tmp_path / "cut.mkv"  # lists 30 frames; the first 30% of the bytes decode a few of them
  cut.write_bytes(data[:int(len(data) * 0.3)])
  out = io.StringIO()
  csv_path = tmp_path / "scores.csv"
  assert score.run(setup["config"], str(setup["root"] / "ckpt"), [str(cut), whole], str(csv_path),
                   out=out) == 0
  cut_row, whole_row = [json.loads(line) for line in out.getvalue().splitlines()]
  claimed, decoded = 30, video_io.SHORTFALLS.get(str(cut))[1]
  assert 0 < decoded < claimed
  assert cut_row["warning"].startswith(f"decoded {decoded} of the {claimed} frames")
  assert isinstance(cut_row["score"], float) and "warning" not in whole_row
  rows = list(csv.DictReader(csv_path.open()))
  assert rows[0]["warning"] == cut_row["warning"] and rows[1]["warning"] == ""
  assert "1 videos decoded fewer frames" in capsys.readouterr().err


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
  config = load_config("smoke")
  config.model.head_hidden = 8
  other = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                 families.abstract_variables(config.model)["params"])
  state_dicts.save_variables(str(tmp_path / "other"), {"params": other})
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
  # 2 clips: (2 panels * 3 in + 1.2 in colour bar) x (2 * 3 in + 0.6 in title + 1.8 in curve)
  # at 100 dpi.
  assert cv2.imread(str(one)).shape == (840, 720, 3)
  out = io.StringIO()
  score.run(setup["config"], str(setup["root"] / "ckpt"), [str(setup["root"] / "videos")],
            out=out, quality_map_path=str(tmp_path / "many.png"))
  drawn = [json.loads(line)["quality_map"] for line in out.getvalue().splitlines()]
  assert drawn == [str(tmp_path / "many-v0.png"), str(tmp_path / "many-v1.png")]
  assert all(cv2.imread(path).shape == (840, 720, 3) for path in drawn)


@pytest.mark.integration
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


def test_clip_chunks_give_the_batch_map(setup):
  clips = score.sample_test_clips(setup["config"], setup["paths"][0])
  whole = score.make_map_fn(setup["config"], setup["params"], clip_chunk=0)(clips)
  one_by_one = score.make_map_fn(setup["config"], setup["params"], clip_chunk=1)(clips)
  assert one_by_one.shape == whole.shape == (2, 2, 4, 4)
  np.testing.assert_allclose(one_by_one, whole, rtol=1e-5, atol=1e-6)


def four_videos(folder):
  """Four small videos v0..v3 in `folder`."""
  folder.mkdir()
  return [write_video(folder / f"v{i}.avi", random_frames(12, 40, 48, seed=20 + i))
          for i in range(4)]


def test_resume_after_a_kill_scores_each_remaining_video_once(setup, tmp_path, monkeypatch):
  videos = four_videos(tmp_path / "videos")
  jsonl, csv_path = tmp_path / "out" / "r.jsonl", tmp_path / "out" / "r.csv"
  kwargs = dict(jsonl_path=str(jsonl), csv_path=str(csv_path), out=io.StringIO())
  real_write = score.score_output.ResultFiles.write

  def dies_on_the_third(files, row):
    if row["path"] == videos[2]:  # half a line on disk, then the process is gone
      for f, _ in files._files:  # pylint: disable=protected-access
        f.write(json.dumps(row)[:25])
        f.flush()
      raise KeyboardInterrupt
    real_write(files, row)

  monkeypatch.setattr(score.score_output.ResultFiles, "write", dies_on_the_third)
  with pytest.raises(KeyboardInterrupt):
    score.run(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")], **kwargs)
  monkeypatch.setattr(score.score_output.ResultFiles, "write", real_write)
  scored = []
  real_score_video = score.score_video
  monkeypatch.setattr(score, "score_video",
                      lambda config, map_fn, path, *a: scored.append(path) or
                      real_score_video(config, map_fn, path, *a))
  code = score.run(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")],
                   resume=True, **kwargs)
  assert code == 0 and scored == videos[2:]  # the finished two are skipped
  lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
  assert [line["path"] for line in lines] == videos  # each once, none lost
  rows = list(csv.DictReader(csv_path.open()))
  assert [r["path"] for r in rows] == videos
  expected = score.make_scorer(setup["config"], setup["params"])
  assert [line["score"] for line in lines] == [expected(v) for v in videos]


def test_output_folders_are_made_before_the_checkpoint_is_read(setup, tmp_path, capsys):
  jsonl, maps = tmp_path / "a" / "b" / "r.jsonl", tmp_path / "maps" / "sub"
  code = score.cli(setup["config"], str(tmp_path / "no_checkpoint"), setup["paths"],
                   jsonl_path=str(jsonl), quality_map_path=str(maps) + os.sep, out=io.StringIO())
  assert code == 2 and "no such checkpoint directory" in capsys.readouterr().err
  assert jsonl.parent.is_dir() and maps.is_dir()


def test_an_impossible_output_folder_stops_before_any_work(setup, tmp_path, monkeypatch, capsys):
  (tmp_path / "file").write_text("")
  monkeypatch.setattr(score, "load_scorer", lambda *a, **k: pytest.fail("model loaded"))
  out = io.StringIO()
  code = score.cli(setup["config"], str(setup["root"] / "ckpt"), setup["paths"],
                   csv_path=str(tmp_path / "file" / "r.csv"), out=out)
  assert code == 2 and out.getvalue() == ""
  assert "cannot create the output folder" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_exit_code_2(setup, tmp_path, capsys):
  damaged = tmp_path / "ckpt"
  shutil.copytree(setup["root"] / "ckpt", damaged)
  chunks = [p for p in damaged.rglob("*") if p.is_file() and p.parent.name == "d"]
  assert chunks
  for chunk in chunks:  # array data unreadable, metadata intact
    chunk.write_bytes(b"garbage")
  out = io.StringIO()
  assert score.cli(setup["config"], str(damaged), setup["paths"], out=out) == 2
  assert out.getvalue() == "" and f"error: {damaged}" in capsys.readouterr().err


def test_shards_cover_the_folder_once_and_concatenate(setup, tmp_path):
  outputs = []
  for index in range(2):
    csv_path = tmp_path / f"shard{index}.csv"
    score.run(setup["config"], str(setup["root"] / "ckpt"),
              [str(setup["root"] / "videos"), setup["empty"]], str(csv_path), out=io.StringIO(),
              num_shards=2, shard_index=index)
    outputs.append(csv_path.read_text())
  rows = list(csv.DictReader("".join(outputs).splitlines()))
  assert sorted(r["path"] for r in rows) == sorted(setup["paths"] + [setup["empty"]])
  assert [r["path"] for r in csv.DictReader(outputs[0].splitlines())] == [
      setup["paths"][0], setup["empty"]]  # every 2nd from 0
  with pytest.raises(ValueError, match="shard_index"):
    score.shard([1, 2], 2, 2)


def calibrated_run(setup, tmp_path):
  """(setup's trainer workdir copied with its calibration stored, 8 videos with MOS i + 0.5)."""
  entries = labelled_videos(tmp_path, 8)  # MOS 0.5, 1.5, ..., 7.5
  run_dir = tmp_path / "run"
  shutil.copytree(setup["root"] / "workdir", run_dir)
  mesh = sharding.make_mesh()
  state = jax.device_put(
      train_step.create_train_state(setup["raw_params"], optax.adamw(1e-3)).replace(
          step=jnp.asarray(6, jnp.int32), ema_params=setup["params"]),
      sharding.replicated(mesh))
  run_calibration.store(setup["config"], str(run_dir), {"train": entries}, state, mesh)
  return run_dir, entries


def test_a_trained_run_reports_calibrated_mos_in_its_label_range(setup, tmp_path):
  config = setup["config"]
  run_dir, entries = calibrated_run(setup, tmp_path)
  stored = json.loads((run_dir / calibration.FILE_NAME).read_text())
  assert set(stored) == {"ema_params", "params"} and stored["ema_params"]["step"] == 6
  assert stored["ema_params"]["label_range"] == [0.5, 7.5]
  out = io.StringIO()
  assert score.run(config, str(run_dir), [e.path for e in entries], out=out) == 0
  lines = [json.loads(line) for line in out.getvalue().splitlines()]
  raw = np.array([line["score"] for line in lines])
  mos = np.array([line["mos"] for line in lines])
  score_01 = np.array([line["score_01"] for line in lines])
  assert mos.min() >= 0.5 and mos.max() <= 7.5
  assert score_01.min() >= 0 and score_01.max() <= 1
  b1, b2, b3, b4 = stored["ema_params"]["beta"]
  by_hand = np.clip(b2 + (b1 - b2) / (1 + np.exp(-(raw - b3) / abs(b4))), 0.5, 7.5)
  np.testing.assert_allclose(mos, by_hand, rtol=1e-9)
  np.testing.assert_allclose(score_01, (by_hand - 0.5) / 7.0, rtol=1e-9)
  order = np.argsort(raw)  # monotone in raw, in the direction the fit found
  assert np.all(np.sign(b1 - b2) * np.diff(mos[order]) >= -1e-12)


def test_two_videos_maps_share_the_calibrated_scale(setup, tmp_path, monkeypatch):
  run_dir, entries = calibrated_run(setup, tmp_path)
  limits = []
  real_limits = quality_map_lib.shown_limits
  monkeypatch.setattr(quality_map_lib, "shown_limits",
                      lambda values, display: limits.append(real_limits(values, display))
                      or limits[-1])
  assert score.run(setup["config"], str(run_dir), [entries[0].path, entries[7].path],
                   out=io.StringIO(), quality_map_path=str(tmp_path / "maps") + os.sep) == 0
  assert limits == [(0.5, 7.5), (0.5, 7.5)]  # the training MOS range, for both videos
  limits.clear()
  score.run(setup["config"], str(run_dir), [entries[0].path, entries[7].path], out=io.StringIO(),
            quality_map_path=str(tmp_path / "stretched") + os.sep, per_video_scale=True)
  assert len(limits) == 2 and limits[0] != limits[1]  # each video's own range


@pytest.mark.slow
@pytest.mark.integration
def test_resume_after_sigkill(setup, tmp_path):
  """A real kill: the process dies after its second row; --resume finishes the folder."""
  videos = four_videos(tmp_path / "videos")
  jsonl = tmp_path / "out" / "r.jsonl"
  command = [sys.executable, "-m", "vqa_jax.score", f"--config={SMOKE}",
             f"--checkpoint={setup['root'] / 'ckpt'}", f"--jsonl={jsonl}", str(tmp_path / "videos")]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 120
  while time.monotonic() < deadline and proc.poll() is None:
    if jsonl.is_file() and jsonl.read_text().count("\n") >= 2:
      proc.send_signal(signal.SIGKILL)
      break
    time.sleep(0.01)
  proc.wait()
  done_before = jsonl.read_text().count("\n")
  print("rows before the resume:", done_before)
  finished = subprocess.run(command + ["--resume"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
  assert finished.returncode == 0, finished.stderr[-2000:]
  assert f"{done_before} of 4 videos already in the output" in finished.stderr or done_before == 4
  paths = [json.loads(line)["path"] for line in jsonl.read_text().splitlines()]
  assert sorted(paths) == videos and len(paths) == 4


def test_converted_upstream_weights_get_the_official_sigmoid(setup, monkeypatch):
  config = setup["config"]
  signature = ("fragments", 2, 16, 4, config.model.embed_dim, tuple(config.model.depths))
  monkeypatch.setitem(calibration.UPSTREAM_CONFIGS, signature, "FAST-VQA-M")  # smoke as if M
  out = io.StringIO()
  assert score.run(config, str(setup["root"] / "ckpt"), setup["paths"], out=out) == 0
  for line in map(json.loads, out.getvalue().splitlines()):
    # vqa.py @9f264e4: FAST-VQA-M's mean 0.023889644, std 0.030781006.
    expected = 1 / (1 + math.exp(-(line["score"] - 0.023889644) / 0.030781006))
    assert line["mos"] is None and line["score_01"] == pytest.approx(expected, rel=1e-12)
