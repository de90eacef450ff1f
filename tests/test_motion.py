"""SimpleVQA's motion features in the pipelines: index lookup, up-front listing, errors naming files."""

import json

import ml_collections
import numpy as np
import pytest
from tests import tf_datasets
from tests.video_files import labelled_videos

from vqa_jax.data import element_plan
from vqa_jax.data import input_pipeline
from vqa_jax.data import motion as motion_lib
from vqa_jax.data import video_io

NUM_FRAMES, DIM = 3, 4
SAMPLING = ml_collections.ConfigDict({"method": "frames_1fps", "clip_len": NUM_FRAMES,
                                      "frame_interval": 1, "grid": 1, "patch": 1,
                                      "short_side": 20, "crop": 16})


def features_of(i: int, rows: int = 5) -> np.ndarray:
  """Video i's features: row r, column c holds 100 i + 10 r + c."""
  return (100 * i + 10 * np.arange(rows)[:, None] + np.arange(DIM)[None, :]).astype(np.float32)


def write_motion_dir(root, entries, rows=None):
  """index.json + sub/v{i}.npy for every entry (rows[i] rows, default 5)."""
  (root / "sub").mkdir(parents=True)
  index = {}
  for i, entry in enumerate(entries):
    name = f"sub/v{i}.npy"
    np.save(root / name, features_of(i, 5 if rows is None else rows[i]))
    index[entry.path] = name
  (root / "index.json").write_text(json.dumps(index))
  return str(root)


@pytest.fixture
def entries(tmp_path):
  (tmp_path / "videos").mkdir()
  return labelled_videos(tmp_path / "videos", 4, num_frames=12)


def test_load_takes_the_first_rows_of_the_indexed_file(tmp_path, entries):
  motion = motion_lib.MotionFeatures(write_motion_dir(tmp_path / "m", entries), NUM_FRAMES, DIM)
  np.testing.assert_array_equal(motion.load(entries[2].path), features_of(2)[:NUM_FRAMES])
  assert motion.check(entries) == 0


def test_missing_index_names_the_file_and_the_command(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"m/index\.json.*simple_vqa_features"):
    motion_lib.MotionFeatures(str(tmp_path / "m"), NUM_FRAMES, DIM)


def test_problems_are_listed_up_front_and_name_the_files(tmp_path, entries):
  motion_dir = write_motion_dir(tmp_path / "m", entries, rows=[5, 2, 5, 5])  # v1 too short
  (tmp_path / "m" / "sub" / "v3.npy").unlink()  # v3 missing
  motion = motion_lib.MotionFeatures(motion_dir, NUM_FRAMES, DIM)
  with pytest.raises(FileNotFoundError) as error:
    motion.check(entries)
  message = str(error.value)
  assert "2 of 4 videos" in message
  assert "sub/v1.npy: shape (2, 4), need at least (3, 4)" in message
  assert "sub/v3.npy: no such file" in message
  assert motion.check(entries, "skip") == 2
  with pytest.raises(video_io.VideoDecodeError, match=r"v1\.mkv: motion features .*sub/v1\.npy"):
    motion.load(entries[1].path)
  wrong_width = motion_lib.MotionFeatures(motion_dir, NUM_FRAMES, DIM + 1)
  assert "need at least (3, 5)" in wrong_width.problem(entries[0].path)
  not_indexed = motion_lib.MotionFeatures(motion_dir, NUM_FRAMES, DIM)
  assert "no motion features in" in not_indexed.problem(str(tmp_path / "other.mkv"))


def test_pipelines_carry_motion_and_skip_videos_without_it(tmp_path, entries):
  motion_dir = write_motion_dir(tmp_path / "m", entries, rows=[5, 5, 1, 5])  # v2 unusable
  motion = motion_lib.MotionFeatures(motion_dir, NUM_FRAMES, DIM)
  with pytest.raises(FileNotFoundError, match="sub/v2.npy"):
    tf_datasets.eval_dataset(entries, SAMPLING, 4, 1, motion=motion)
  bad = element_plan.BadVideoLog()
  batch = next(input_pipeline.as_numpy(tf_datasets.eval_dataset(
      entries, SAMPLING, 4, 1, on_bad_video="skip", bad_videos=bad, motion=motion,
      process_index=0, process_count=1)))
  assert batch["video"].shape == (4, 1, NUM_FRAMES, 16, 16, 3)
  assert batch["motion"].shape == (4, NUM_FRAMES, DIM) and batch["motion"].dtype == np.float32
  np.testing.assert_array_equal(batch["valid"], [True, True, False, True])
  np.testing.assert_array_equal(batch["motion"][3], features_of(3)[:NUM_FRAMES])
  np.testing.assert_array_equal(batch["motion"][2], 0.0)
  assert list(bad.reasons) == [entries[2].path]
  assert list(element_plan.model_inputs(batch)) == ["video", "motion"]

  train = tf_datasets.train_dataset(entries, SAMPLING, 4, seed=0, num_steps=1,
                                    on_bad_video="skip", motion=motion, process_index=0,
                                    process_count=1)
  batch = next(input_pipeline.as_numpy(train))
  assert batch["video"].shape == (4, NUM_FRAMES, 16, 16, 3)
  assert 2 not in batch["index"].tolist()  # substituted by the next usable video
  for row, index in zip(batch["motion"], batch["index"]):
    np.testing.assert_array_equal(row, features_of(int(index))[:NUM_FRAMES])
