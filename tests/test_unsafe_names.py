"""File names OpenCV would misread: not UTF-8 (a segfault in cv2's binding), a relative name with
a colon (an FFmpeg protocol), '%' patterns. Each reads, scores and trains like its ASCII copy."""

import contextlib
import io
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import ml_collections
import numpy as np
import pytest
from tests.helpers import REPO_ROOT
from tests.helpers import init_params
from tests.helpers import load_config
from tests.video_files import labelled_videos
from tests.video_files import random_frames
from tests.video_files import write_video

from vqa_jax.config.specs import ImageSpec
from vqa_jax.convert import state_dicts
from vqa_jax.data import elements
from vqa_jax.data import labels
from vqa_jax.data import loaders
from vqa_jax.data import preflight
from vqa_jax.data import sources
from vqa_jax.data import show_fragments
from vqa_jax.data.synthetic import images as synthetic_images
from vqa_jax.data.synthetic import video as synthetic_video
from vqa_jax.data import video_io
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.runtime import sharding
from vqa_jax.scoring import score
from vqa_jax.training import trainer

NOT_UTF8 = b"caf\xe9"  # Latin-1 'café': what Python lists as the str 'caf\udce9'.
SAMPLING = ml_collections.ConfigDict({"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8})


def renamed(path: str | pathlib.Path, name: bytes) -> str:
  """Renames the file or folder `path` to the bytes `name` in its folder; the new path as str."""
  target = os.path.join(os.path.dirname(os.fsencode(path)), name)
  os.rename(os.fsencode(path), target)
  return os.fsdecode(target)


def copied(path: str, name: bytes) -> str:
  """A copy of the file `path` named by the bytes `name` in its folder; the copy's path as str."""
  target = os.path.join(os.path.dirname(os.fsencode(path)), name)
  shutil.copyfile(os.fsencode(path), target)
  return os.fsdecode(target)


def test_a_name_that_is_not_utf8_does_not_crash_the_process(tmp_path):
  """In a child process, since bare cv2.VideoCapture on such a str segfaults (rc -11)."""
  path = copied(write_video(tmp_path / "clip.mkv", random_frames(3, 16, 16)), NOT_UTF8 + b".mkv")
  child = subprocess.run(
      [sys.executable, "-c", "import sys; from vqa_jax.data import video_io; "
       "print(video_io.probe(sys.argv[1]).num_frames, video_io.open_problem(sys.argv[1]) == '')",
       path], capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT)
  assert (child.returncode, child.stdout) == (0, "3 True\n"), child.stderr[-2000:]


def test_opencv_name_changes_only_the_names_opencv_would_misread():
  for ordinary in ("/data/clip.mp4", "clips/clip.mp4", "/data/caf\u00e9.mp4", "a%d.mp4",
                   "/data/http:clip.mp4", "clips/http:clip.mp4"):
    assert video_io.opencv_name(ordinary) is ordinary
  assert video_io.opencv_name("/data/caf\udce9.mp4") == b"/data/caf\xe9.mp4"
  assert video_io.opencv_name("http:clip.mp4") == "./http:clip.mp4"
  assert video_io.opencv_name("pipe:caf\udce9.mp4") == b"./pipe:caf\xe9.mp4"


# name of the copy -> whether the test runs in the copy's folder and opens it by a relative name.
VIDEO_NAMES = {NOT_UTF8 + b".mkv": False, "caf\u00e9.mkv".encode(): False,
               b"a%d.mkv": False, b"a%03d%s.mkv": False, b"http:clip.mkv": True,
               b"pipe:clip.mkv": True, NOT_UTF8 + b":clip.mkv": True}


@pytest.mark.parametrize("name", sorted(VIDEO_NAMES), ids=repr)
def test_a_video_with_an_unsafe_name_decodes_the_frames_written(tmp_path, monkeypatch, name):
  frames = random_frames(9, 16, 24, seed=1)
  path = copied(write_video(tmp_path / "clip.mkv", frames), name)  # FFV1: lossless.
  if VIDEO_NAMES[name]:
    monkeypatch.chdir(tmp_path)
    path = os.path.basename(path)
  assert video_io.open_problem(path) == ""
  assert video_io.probe(path) == video_io.VideoInfo(num_frames=9, fps=10.0, height=16, width=24)
  indices = [8, 0, 3, 3]
  np.testing.assert_array_equal(video_io.read_frames(path, indices), frames[indices])
  got, inverse = video_io.read_sampled_frames(path, lambda info: [info.num_frames - 1, 1])
  np.testing.assert_array_equal(got[inverse], frames[[8, 1]])


def test_a_folder_that_is_not_utf8_holds_readable_videos(tmp_path):
  frames = random_frames(5, 16, 16, seed=2)
  (tmp_path / "folder").mkdir()
  write_video(tmp_path / "folder" / "clip.mkv", frames)
  folder = renamed(tmp_path / "folder", NOT_UTF8)
  path = os.path.join(folder, "clip.mkv")
  np.testing.assert_array_equal(video_io.read_frames(path, range(5)), frames)


@pytest.mark.parametrize("name", [NOT_UTF8 + b".png", b"a%d.png", b"pipe:still.png"], ids=repr)
def test_an_image_with_an_unsafe_name_reads_the_pixels_written(tmp_path, monkeypatch, name):
  image = random_frames(1, 12, 20, seed=3)[0]
  assert cv2.imwrite(str(tmp_path / "still.png"), image[..., ::-1])  # RGB -> BGR; PNG: lossless.
  path = copied(str(tmp_path / "still.png"), name)
  if name.startswith(b"pipe:"):
    monkeypatch.chdir(tmp_path)
    path = os.path.basename(path)
  assert video_io.probe(path) == video_io.VideoInfo(num_frames=1, fps=0.0, height=12, width=20)
  np.testing.assert_array_equal(video_io.read_frames(path, [0]), image[None])


def test_a_bad_file_with_such_a_name_is_an_error_naming_its_bytes(tmp_path):
  path = os.fsdecode(os.path.join(os.fsencode(tmp_path), NOT_UTF8 + b".mp4"))
  with open(path, "w", encoding="utf-8") as f:
    f.write("this is not a video\n" * 50)
  with pytest.raises(video_io.VideoDecodeError) as e:
    video_io.probe(path)
  assert e.value.path == path
  assert str(e.value) == (f"{tmp_path}/caf\\xe9.mp4: OpenCV cannot open it (not a video, or an "
                          "unsupported container or codec)")
  str(e.value).encode("ascii")  # printable on any stream
  assert video_io.open_problem(path).startswith("OpenCV cannot open it")


@pytest.mark.parametrize("path", ["/tmp/a\0b.mp4", "/tmp/\ud800.mp4"], ids=["nul", "surrogate"])
def test_a_name_that_is_no_file_name_is_a_decode_error(path):
  assert video_io.file_problem(path).startswith("the name is not a valid file name (")
  with pytest.raises(video_io.VideoDecodeError, match="not a valid file name") as e:
    video_io.read_frames(path, [0])
  str(e.value).encode("ascii")
  assert video_io.open_problem(path).startswith("the name is not a valid file name")


def test_the_writers_write_into_a_folder_that_is_not_utf8(tmp_path):
  """synthetic videos and images, and show_fragments' sheet: cv2 writers get `opencv_name`."""
  folder = os.fsdecode(os.path.join(os.fsencode(tmp_path), NOT_UTF8))
  os.mkdir(folder)
  frames = random_frames(3, 16, 16, seed=4)
  synthetic_video.write_video(os.path.join(folder, "clip.avi"), frames[..., ::-1], fps=5.0)
  assert video_io.probe(os.path.join(folder, "clip.avi")).num_frames == 3  # MJPEG: lossy
  spec = ImageSpec(num_train=1, num_test=1, num_cross=1, height=32, width=40)
  synthetic_images.generate(folder, spec)
  meta = synthetic_images.sample_image(spec, "train", 0)
  np.testing.assert_array_equal(video_io.read_image(os.path.join(folder, meta["relpath"])),
                                synthetic_images.render_image(meta, spec)[..., ::-1])  # PNG
  video = write_video(tmp_path / "v.mkv", random_frames(9, 40, 48, seed=6))
  npy, png = show_fragments.write_inspection(video, load_config("smoke").sampling,
                                             os.path.join(folder, "sheet"))
  np.testing.assert_array_equal(video_io.read_image(png),
                                show_fragments.contact_sheet(np.load(npy)))  # PNG: lossless


# ------------------------------------------------------------------------------------- scoring


@pytest.fixture(scope="module")
def smoke_checkpoint(fast_compile, tmp_path_factory):  # pylint: disable=unused-argument
  """(smoke config, a convert_weights checkpoint of smoke params)."""
  root = tmp_path_factory.mktemp("unsafe_score")
  config = load_config("smoke")
  params, = init_params(build_model(config.model), (3,))
  state_dicts.save_variables(str(root / "ckpt"), {"params": params})
  return config, str(root / "ckpt")


def test_scoring_a_folder_with_a_name_that_is_not_utf8_gives_normal_rows(smoke_checkpoint,
                                                                          tmp_path):
  config, checkpoint = smoke_checkpoint
  (tmp_path / "videos").mkdir()
  ascii_path = write_video(tmp_path / "videos" / "a.avi", random_frames(12, 40, 48, seed=5))
  unsafe = copied(ascii_path, NOT_UTF8 + b".avi")
  jsonl = tmp_path / "rows.jsonl"
  out = io.StringIO()
  code = score.run(config, checkpoint, [str(tmp_path / "videos")], out=out, jsonl_path=str(jsonl),
                   quality_map_path=str(tmp_path / "maps") + os.sep)
  rows = [json.loads(line) for line in out.getvalue().splitlines()]
  assert code == 0 and [row["path"] for row in rows] == [ascii_path, unsafe]
  assert "error" not in rows[1] and rows[1]["score"] == rows[0]["score"]  # the same bytes
  assert [json.loads(line) for line in jsonl.read_text().splitlines()] == rows
  # The picture (its title names the video) is FOLDER/<stem>.png, under the same bytes.
  assert sorted(os.listdir(os.fsencode(tmp_path / "maps"))) == [b"a.png", NOT_UTF8 + b".png"]
  assert rows[1]["quality_map"] == os.fsdecode(os.path.join(os.fsencode(tmp_path / "maps"),
                                                            NOT_UTF8 + b".png"))
  # A file with such a name that is no video (listed last): an error row naming it.
  with open(os.path.join(os.fsencode(tmp_path / "videos"), b"x-" + NOT_UTF8 + b".avi"),
            "w", encoding="utf-8") as f:
    f.write("this is not a video\n" * 50)
  out = io.StringIO()
  assert score.run(config, checkpoint, [str(tmp_path / "videos")], out=out) == 1
  *scored, bad = [json.loads(line) for line in out.getvalue().splitlines()]
  assert bad["path"] == os.fsdecode(os.path.join(os.fsencode(tmp_path / "videos"),
                                                 b"x-" + NOT_UTF8 + b".avi"))
  assert bad["error"] == (f"VideoDecodeError: {tmp_path}/videos/x-caf\\xe9.avi: OpenCV cannot "
                          "open it (not a video, or an unsupported container or codec)")
  assert [row["score"] for row in scored] == [row["score"] for row in rows]
  os.remove(os.fsencode(bad["path"]))
  # --resume finds the row again (the name survives JSON) and scores nothing twice.
  out = io.StringIO()
  assert score.run(config, checkpoint, [str(tmp_path / "videos")], out=out,
                   jsonl_path=str(jsonl), resume=True) == 0
  assert out.getvalue() == "" and len(jsonl.read_text().splitlines()) == 2


# ------------------------------------------------------------------------------------ training


@pytest.fixture
def label_file_under_a_folder_not_utf8(tmp_path):
  """(entries of 5 videos read from a label file whose data root is b'.../caf\\xe9', the same
  videos under an ASCII-named copy of that folder)."""
  (tmp_path / "videos").mkdir()
  labelled_videos(tmp_path / "videos", 5)
  shutil.copytree(tmp_path / "videos", tmp_path / "ascii")
  root = renamed(tmp_path / "videos", NOT_UTF8)
  label_file = tmp_path / "train.txt"
  labels.write_labels(str(label_file), [(f"v{i}.mkv", 1.2, 10.0, i + 0.5) for i in range(5)])
  return (labels.read_labels(str(label_file), root),
          labels.read_labels(str(label_file), str(tmp_path / "ascii")))


@pytest.mark.parametrize("loader, workers", [
    ("tf_data", 2), ("grain", 0),
    pytest.param("grain", 2, marks=pytest.mark.integration)])  # spawned workers: ~30 s
def test_both_loaders_read_a_data_root_that_is_not_utf8(label_file_under_a_folder_not_utf8,
                                                        loader, workers):
  entries, ascii_entries = label_file_under_a_folder_not_utf8
  assert os.fsencode(entries[0].path).endswith(NOT_UTF8 + b"/v0.mkv")
  preflight.check_splits({"train": entries}, "error")  # every video opens
  make = lambda e: elements.train_plan(e, SAMPLING, 3, seed=3, num_steps=3, on_bad_video="error")
  plan = make(entries)
  batches = list(loaders.batches(plan, loader, workers))
  expected = list(loaders.batches(make(ascii_entries), loader, workers))
  assert len(batches) == len(expected) == 3 and plan.bad_videos.count == 0
  for batch, want in zip(batches, expected):
    assert sorted(batch) == sorted(want)
    for key in batch:
      np.testing.assert_array_equal(batch[key], want[key])
    for video, index in zip(batch["video"], batch["index"]):  # v{i}: frame t is 20 * i + t
      np.testing.assert_array_equal(video.reshape(-1) // 20, index)


@pytest.mark.parametrize("loader", ["tf_data", "grain"])
def test_a_bad_video_with_such_a_name_is_skipped_or_named(label_file_under_a_folder_not_utf8,
                                                          loader):
  entries, _ = label_file_under_a_folder_not_utf8
  bad = os.path.join(os.path.dirname(entries[0].path), os.fsdecode(b"bad-" + NOT_UTF8 + b".mkv"))
  with open(bad, "w", encoding="utf-8") as f:
    f.write("this is not a video\n" * 50)
  with_bad = entries[:2] + [labels.Entry(bad, 9.0)] + entries[2:]
  plan = elements.train_plan(with_bad, SAMPLING, 3, seed=3, num_steps=3, on_bad_video="skip")
  batches = list(loaders.batches(plan, loader, 0 if loader == "grain" else 2))
  assert len(batches) == 3 and 2 not in {int(i) for b in batches for i in b["index"]}
  assert plan.bad_videos.reasons == {bad: "OpenCV cannot open it (not a video, or an unsupported "
                                          "container or codec)"}
  plan = elements.train_plan(with_bad, SAMPLING, 3, seed=3, num_steps=3, on_bad_video="error")
  with pytest.raises(video_io.VideoDecodeError, match="cannot open") as e:
    list(loaders.batches(plan, loader, 0 if loader == "grain" else 2))
  assert "caf\\xe9/bad-caf\\xe9.mkv: OpenCV cannot open it" in str(e.value)
  with pytest.raises(preflight.UnopenableVideos, match=r"caf\\xe9/bad-caf\\xe9\.mkv: OpenCV cannot"):
    preflight.check_splits({"train": with_bad}, "error")


def smoke_config(cache_dir: str, steps: int = 2) -> ml_collections.ConfigDict:
  """The smoke config for `steps` steps, its synthetic set in `cache_dir` (data.cache_dir)."""
  config = load_config("smoke")
  config.data.cache_dir = cache_dir
  config.train.steps = steps
  config.train.checkpoint_every = steps
  config.log.tensorboard = False
  return config


class ModelReached(Exception):
  """Raised in place of building the model: the trainer got past its data checks."""


def first_batches(config, entries, count: int) -> list[dict]:
  """The first `count` host batches of the trainer's training loader."""
  with contextlib.closing(trainer.train_batches(config, entries, sharding.make_mesh())) as stream:
    return [batch for batch, _ in itertools.islice(stream, count)]


def test_the_trainer_generates_checks_and_loads_a_dataset_in_a_folder_not_utf8(tmp_path,
                                                                               monkeypatch):
  """--config.data.cache_dir naming a folder that is not UTF-8: the smoke set is written there,
  passes the trainer's up-front checks (files exist, every video opens) and its training loader
  gives the batches of the same set in an ASCII-named folder."""
  config = smoke_config(os.fsdecode(os.path.join(os.fsencode(tmp_path), NOT_UTF8)))
  splits = sources.load_splits(config.data)
  assert os.fsencode(splits["train"][0].path).startswith(os.path.join(os.fsencode(tmp_path),
                                                                       NOT_UTF8))

  def model_reached(*args, **kwargs):
    raise ModelReached

  monkeypatch.setattr(trainer, "init_state", model_reached)
  with pytest.raises(ModelReached):
    trainer.run(config, str(tmp_path / "work"), splits)
  ascii_config = smoke_config(str(tmp_path / "ascii"))
  ascii_splits = sources.load_splits(ascii_config.data)
  got = first_batches(config, splits["train"], 2)
  want = first_batches(ascii_config, ascii_splits["train"], 2)
  assert len(got) == len(want) == 2
  for batch, expected in zip(got, want):
    assert sorted(batch) == sorted(expected)
    for key in batch:
      np.testing.assert_array_equal(batch[key], expected[key])


@pytest.mark.slow  # 100-180 s on the loaded 2-core CPU: the smoke model's compiles
@pytest.mark.integration
@pytest.mark.usefixtures("fast_compile")
def test_smoke_training_with_a_cache_folder_that_is_not_utf8(tmp_path):
  """Two steps of the smoke config, and its evaluations, with the data set in a folder whose name
  is not UTF-8."""
  config = smoke_config(os.fsdecode(os.path.join(os.fsencode(tmp_path), NOT_UTF8)))
  summary = trainer.run(config, str(tmp_path / "work"), sources.load_splits(config.data))
  assert sorted(summary.final) == ["cross", "test"]
  assert all(np.isfinite(v) for metrics in summary.final.values()
             for kind in metrics.values() for v in kind.values())
