"""vqa_jax.score: deterministic per-video scores from converted weights and trainer workdirs,
per-file errors, CSV, quality-map pictures, and the command line."""

import csv
import functools
import io
import json
import math
import os
import shlex
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
from vqa_jax.scoring import provenance
from vqa_jax.scoring import quality_map as quality_map_lib
from vqa_jax.scoring import run_calibration
from vqa_jax.scoring import score
from vqa_jax.scoring import score_output
from vqa_jax.runtime import sharding
from vqa_jax.training import train_step
from vqa_jax.data.sampling import clip_sampler
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
  clips = clip_sampler.sample_clips(path, config.sampling, config.sampling.num_clips_eval)
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
  with pytest.raises(score.Interrupted):
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


def jsonl_rows(path):
  """The rows of a JSON-lines result file."""
  return [json.loads(line) for line in path.read_text().splitlines()]


def csv_rows(path):
  """The rows of a CSV result file."""
  return list(csv.DictReader(path.open(newline="")))


def no_model(*args, **kwargs):
  """A load_scorer that must not be reached."""
  del args, kwargs
  pytest.fail("the checkpoint was loaded")


def test_score_without_resume_never_truncates_an_existing_file(setup, tmp_path, monkeypatch,
                                                                capsys):
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  outputs = dict(jsonl_path=str(jsonl), csv_path=str(csv_path), out=io.StringIO())
  checkpoint = str(setup["root"] / "ckpt")
  assert score.cli(setup["config"], checkpoint, setup["paths"][:1], **outputs) == 0
  (first,) = jsonl_rows(jsonl)
  with score_output.ResultFiles(str(jsonl), str(csv_path), resume=True) as files:
    for i in range(37):  # 38 rows of this checkpoint in all
      files.write({**first, "path": str(tmp_path / f"gone{i}.avi"), "score": i / 37})
  before = jsonl.read_bytes(), csv_path.read_bytes()
  capsys.readouterr()
  with monkeypatch.context() as patched:
    patched.setattr(score, "load_scorer", no_model)  # refused before the model is loaded
    assert score.cli(setup["config"], checkpoint, setup["paths"][1:], **outputs) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith(f"error: {jsonl} already holds 38 result rows") and "--resume" in error
  assert "\n" not in error
  assert (jsonl.read_bytes(), csv_path.read_bytes()) == before
  assert score.cli(setup["config"], checkpoint, setup["paths"][1:], resume=True, **outputs) == 0
  rows = jsonl_rows(jsonl)
  assert len(rows) == 39 and jsonl.read_bytes().startswith(before[0])  # appended
  assert [r["path"] for r in csv_rows(csv_path)] == [r["path"] for r in rows]


def test_a_second_scorer_on_the_same_file_gets_one_clear_line(setup, tmp_path, monkeypatch,
                                                              capsys):
  jsonl = tmp_path / "same.jsonl"
  checkpoint = str(setup["root"] / "ckpt")
  with score_output.ResultFiles(str(jsonl), None) as first:  # the first scorer, mid-run
    first.write({"path": "/videos/a.mp4", "size": 1, "mtime_ns": 2, "score": 0.5})
    monkeypatch.setattr(score, "load_scorer", no_model)
    for resume in (False, True):
      assert score.cli(setup["config"], checkpoint, setup["paths"], jsonl_path=str(jsonl),
                       resume=resume, out=io.StringIO()) == 2
      error = capsys.readouterr().err.strip()
      assert error.startswith(f"error: {jsonl} is being written by another score process (pid "
                              f"{os.getpid()} on host") and "\n" not in error
  assert [r["path"] for r in jsonl_rows(jsonl)] == ["/videos/a.mp4"]  # the first's rows only


class Killed(BaseException):
  """A simulated SIGKILL: nothing in the scorer handles it."""


def test_a_kill_between_the_jsonl_and_csv_writes_then_resume_gives_one_row_per_video(
    setup, tmp_path, monkeypatch):
  videos = four_videos(tmp_path / "videos")
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  kwargs = dict(jsonl_path=str(jsonl), csv_path=str(csv_path), out=io.StringIO())
  real_write = score_output.ResultFiles.write

  def dies_after_the_jsonl_line_of_the_third(files, row):
    if row["path"] != videos[2]:
      return real_write(files, row)
    jsonl_file = files._files[0][0]  # pylint: disable=protected-access
    jsonl_file.write(json.dumps(row) + "\n")
    jsonl_file.flush()
    raise Killed

  with monkeypatch.context() as patched:
    patched.setattr(score_output.ResultFiles, "write", dies_after_the_jsonl_line_of_the_third)
    with pytest.raises(Killed):
      score.run(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")],
                **kwargs)
  assert len(jsonl_rows(jsonl)) == 3 and len(csv_rows(csv_path)) == 2  # the JSONL one ahead
  scored = []
  real_score_video = score.score_video
  monkeypatch.setattr(score, "score_video", lambda config, map_fn, path, *a: scored.append(path)
                      or real_score_video(config, map_fn, path, *a))
  assert score.run(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")],
                   resume=True, **kwargs) == 0
  assert scored == videos[3:]  # the third is in the record: not scored twice
  from_jsonl = [r["path"] for r in jsonl_rows(jsonl)]
  from_csv = [r["path"] for r in csv_rows(csv_path)]
  assert from_jsonl == from_csv == videos  # exactly one row per video in both
  assert [float(r["score"]) for r in csv_rows(csv_path)] == [r["score"] for r in jsonl_rows(jsonl)]


def test_rows_record_the_checkpoint_and_resume_with_another_is_refused(setup, tmp_path, capsys):
  config, paths = setup["config"], setup["paths"][:1]
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  outputs = dict(jsonl_path=str(jsonl), csv_path=str(csv_path), out=io.StringIO())
  assert score.cli(config, str(setup["root"] / "ckpt"), paths, **outputs) == 0
  (row,) = jsonl_rows(jsonl)
  assert row["checkpoint"] == str(setup["root"] / "ckpt")
  assert row["checkpoint_digest"] == provenance.tree_digest(setup["params"])  # the saved weights
  assert row["config_digest"] == provenance.config_digest(config)
  assert len(row["checkpoint_digest"]) == len(row["config_digest"]) == 16
  (table,) = csv_rows(csv_path)
  assert [table[k] for k in provenance.FIELDS] == [row[k] for k in provenance.FIELDS]
  # The same weights elsewhere (a copy; the workdir's EMA params) have the same digest ...
  shutil.copytree(setup["root"] / "ckpt", tmp_path / "copy")
  for checkpoint in (tmp_path / "copy", setup["root"] / "workdir"):
    out = io.StringIO()
    assert score.cli(config, str(checkpoint), paths, out=out) == 0
    assert json.loads(out.getvalue())["checkpoint_digest"] == row["checkpoint_digest"]
  # ... and resuming with them is fine; the raw params, or another sampling, are refused.
  assert score.cli(config, str(tmp_path / "copy"), paths, resume=True, **outputs) == 0
  capsys.readouterr()
  before = jsonl.read_bytes(), csv_path.read_bytes()
  other_config = load_config("smoke")
  other_config.sampling.num_clips_eval = 3
  for other, use_ema, differs in ((config, False, "checkpoint"), (other_config, True, "config")):
    assert score.cli(other, str(setup["root"] / "workdir"), setup["paths"], resume=True,
                     use_ema=use_ema, **outputs) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith(f"error: {jsonl} holds 1 of 1 rows from another {differs} (first: "
                            f"checkpoint {setup['root'] / 'ckpt'} (digest")
    assert "--allow_mixed_checkpoints" in error
    assert (jsonl.read_bytes(), csv_path.read_bytes()) == before
  assert score.cli(config, str(setup["root"] / "workdir"), setup["paths"], resume=True,
                   use_ema=False, allow_mixed_checkpoints=True, **outputs) == 0
  rows = jsonl_rows(jsonl)
  assert [r["path"] for r in rows] == setup["paths"]
  assert rows[1]["checkpoint_digest"] == provenance.tree_digest(setup["raw_params"])


def test_ctrl_c_while_scoring_is_one_line_with_the_resume_command(setup, tmp_path, monkeypatch,
                                                                  capsys):
  videos = four_videos(tmp_path / "videos")
  jsonl, csv_path = tmp_path / "r.jsonl", tmp_path / "r.csv"
  kwargs = dict(jsonl_path=str(jsonl), csv_path=str(csv_path), out=io.StringIO())
  real_score_video = score.score_video

  def interrupted_on_the_third(config, map_fn, path, *args):
    if path == videos[2]:
      raise KeyboardInterrupt
    return real_score_video(config, map_fn, path, *args)

  monkeypatch.setattr(score, "score_video", interrupted_on_the_third)
  command = "python -m vqa_jax.score --resume --jsonl=r.jsonl videos"
  assert score.cli(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")],
                   command=command, **kwargs) == score.EXIT_INTERRUPTED == 130
  err = capsys.readouterr().err
  assert "Traceback" not in err
  assert err.splitlines()[-1] == (f"interrupted: 2 rows saved in {jsonl} and {csv_path} (2 from "
                                  f"this run); continue with: {command}")
  assert [r["path"] for r in jsonl_rows(jsonl)] == [r["path"] for r in csv_rows(csv_path)] == (
      videos[:2])
  assert not os.path.exists(f"{jsonl}.lock")  # released
  out = io.StringIO()  # without output files: nothing to resume
  assert score.cli(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")],
                   out=out) == 130
  assert len(out.getvalue().splitlines()) == 2
  assert capsys.readouterr().err.splitlines()[-1] == (
      "interrupted: no --jsonl / --csv to resume from; the rows printed above are complete, one "
      "per video scored")
  monkeypatch.setattr(score, "score_video", real_score_video)
  assert score.cli(setup["config"], str(setup["root"] / "ckpt"), [str(tmp_path / "videos")],
                   resume=True, **kwargs) == 0
  assert [r["path"] for r in jsonl_rows(jsonl)] == videos


def test_resume_command_repeats_the_arguments_with_resume():
  assert score.resume_command(["/x/vqa_jax/score.py", "--checkpoint=/r un", "--noresume",
                               "--jsonl=o.jsonl", "videos dir"]) == (
      "python -m vqa_jax.score --resume '--checkpoint=/r un' --jsonl=o.jsonl 'videos dir'")
  assert score.resume_command(["vqa-jax score", "--resume", "--csv=o.csv", "v.mp4"]) == (
      "vqa-jax score --resume --csv=o.csv v.mp4")


def test_short_and_small_videos_are_scored_with_warnings_and_counted(setup, tmp_path, capsys):
  folder = tmp_path / "videos"
  folder.mkdir()
  # Smoke: clips of 4 frames 2 apart (a clip spans 7 frames) on a 2 x 16 = 32-pixel grid.
  short = write_video(folder / "a_short.avi", random_frames(4, 40, 48, seed=1))  # 0 2 0 2
  tiny = write_video(folder / "b_tiny.avi", random_frames(20, 16, 16, seed=2))
  both = write_video(folder / "c_both.avi", random_frames(6, 16, 24, seed=3))  # 0 2 4 0
  clean = write_video(folder / "d_clean.avi", random_frames(7, 40, 48, seed=4))  # 0 2 4 6
  out, csv_path = io.StringIO(), tmp_path / "r.csv"
  assert score.run(setup["config"], str(setup["root"] / "ckpt"), [str(folder)], str(csv_path),
                   out=out) == 0
  rows = {r["path"]: r for r in map(json.loads, out.getvalue().splitlines())}
  wraps = ("shorter than a clip: {} frames, a clip samples 4 frames 2 apart, so it wraps round "
           "to frame 0")
  upsampled = ("smaller than the fragment grid: {}, upsampled to a short side of 32 pixels "
               "(2 x 16)")
  assert rows[short]["warning"] == wraps.format(4)
  assert rows[tiny]["warning"] == upsampled.format("16x16")
  assert rows[both]["warning"] == wraps.format(6) + "; " + upsampled.format("24x16")
  assert "warning" not in rows[clean]
  assert all(isinstance(r["score"], float) for r in rows.values())
  assert {r["path"]: r["warning"] for r in csv_rows(csv_path)} == {
      p: rows[p].get("warning", "") for p in rows}
  err = capsys.readouterr().err.splitlines()
  assert ("2 videos are shorter than a clip (its frames wrap round) (their rows have a 'warning')"
          in err)
  assert ("2 videos are smaller than the fragment grid (upsampled) (their rows have a 'warning')"
          in err)


@pytest.mark.integration
def test_command_line_refusals_are_one_line_with_exit_code_2(setup, tmp_path):
  """An existing result file without --resume, and a file another scorer holds: exit 2, one line."""
  jsonl = tmp_path / "r.jsonl"
  jsonl.write_text(json.dumps({"path": "/v/a.mp4", "size": 1, "mtime_ns": 2, "score": 0.5}) + "\n")
  before = jsonl.read_bytes()
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  command = [sys.executable, "-m", "vqa_jax.score", f"--config={SMOKE}",
             f"--checkpoint={setup['root'] / 'ckpt'}", f"--jsonl={jsonl}", setup["paths"][0]]
  refused = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
  assert refused.returncode == 2, refused.stderr[-2000:]
  assert refused.stderr.strip() == (
      f"error: {jsonl} already holds 1 result rows, and score never overwrites results: add "
      "--resume to continue it (the videos it holds are skipped, new rows appended), or give "
      "another output file")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from vqa_jax.scoring import output_lock; "
       "output_lock.OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
       str(jsonl)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "held\n"
    locked = subprocess.run(command + ["--resume"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
  finally:
    holder.kill()
    holder.wait()
  assert locked.returncode == 2, locked.stderr[-2000:]
  assert len(locked.stderr.strip().splitlines()) == 1
  assert locked.stderr.startswith(f"error: {jsonl} is being written by another score process "
                                  f"(pid {holder.pid} on host")
  assert jsonl.read_bytes() == before


@pytest.mark.slow
@pytest.mark.integration
def test_sigint_while_scoring_exits_130_with_the_resume_command(setup, tmp_path):
  """A real Ctrl-C (SIGINT) mid-folder: one line, exit 130, and its command finishes the folder."""
  folder = tmp_path / "videos"
  folder.mkdir()
  videos = [write_video(folder / f"v{i}.avi", random_frames(8, 40, 48, seed=40 + i))
            for i in range(6)]
  jsonl = tmp_path / "r.jsonl"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
  command = [sys.executable, "-m", "vqa_jax.score", f"--config={SMOKE}",
             f"--checkpoint={setup['root'] / 'ckpt'}", f"--jsonl={jsonl}",
             f"--quality-map={tmp_path / 'maps'}{os.sep}", str(folder)]  # maps: ~0.3 s a video
  proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 120
  while time.monotonic() < deadline and proc.poll() is None:
    if jsonl.is_file() and jsonl.read_text().count("\n") >= 1:
      proc.send_signal(signal.SIGINT)
      break
    time.sleep(0.01)
  stderr = proc.communicate(timeout=120)[1]
  assert proc.returncode == 130, stderr[-2000:]
  assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
  saved = len(jsonl_rows(jsonl))
  last = stderr.strip().splitlines()[-1]
  prefix = f"interrupted: {saved} rows saved in {jsonl} ({saved} from this run); continue with: "
  assert last.startswith(prefix) and 1 <= saved < 6
  resumed = shlex.split(last[len(prefix):])
  assert resumed[:4] == ["python", "-m", "vqa_jax.score", "--resume"]
  finished = subprocess.run([sys.executable, *resumed[1:]], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
  assert finished.returncode == 0, finished.stderr[-2000:]
  assert [r["path"] for r in jsonl_rows(jsonl)] == videos
