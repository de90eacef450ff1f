"""The on_bad_video policy of the pipelines: 'error' names the file, 'skip' logs and counts."""

import pathlib
import threading
from unittest import mock

import ml_collections
import numpy as np
import pytest
from tests.video_files import mixed_entries
from tests.video_files import truncated_copy
from tests import tf_datasets

from vqa_jax.data import element_plan
from vqa_jax.data import input_pipeline
from vqa_jax.data import video_io
from vqa_jax.data.labels import Entry

SAMPLING = ml_collections.ConfigDict({"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8})
REASONS = {"empty": "empty", "text": "cannot open", "truncated": "cannot open"}


def good_number(entry: Entry) -> int:
  """i of a good video v{i}.mkv."""
  return int(pathlib.Path(entry.path).stem[1:])


def assert_real_videos(batch, entries):
  """Each slot holds the video named by `index` (frame values 20 * i + t) and its label."""
  for video, label, index in zip(batch["video"], batch["label"], batch["index"]):
    entry = entries[index]
    assert label == np.float32(entry.mos)
    np.testing.assert_array_equal(video.reshape(-1) // 20, good_number(entry))


def train(entries, **kwargs):
  """All batches of a 7-step, batch-3 training pipeline (21 positions: > 2 epochs of 8)."""
  args = {"batch_size": 3, "seed": 3, "num_steps": 7} | kwargs
  return list(input_pipeline.as_numpy(tf_datasets.train_dataset(entries, SAMPLING, **args)))


def evaluate(entries, **kwargs):
  """All batches of an evaluation pipeline with batch size 4 and 1 clip."""
  ds = tf_datasets.eval_dataset(entries, SAMPLING, batch_size=4, num_clips=1, **kwargs)
  return list(input_pipeline.as_numpy(ds))


@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize("run", [train, evaluate])
def test_error_policy_names_the_file(good_and_bad_videos, kind, run):
  good, bad = good_and_bad_videos
  with pytest.raises(video_io.VideoDecodeError, match=REASONS[kind]) as e:
    run(good[:1] + [Entry(bad[kind], 1.0)])
  assert e.value.path == bad[kind] and str(e.value).startswith(f"{bad[kind]}: ")


def test_unknown_policy_is_rejected(good_and_bad_videos):
  with pytest.raises(ValueError, match="on_bad_video"):
    tf_datasets.eval_dataset(good_and_bad_videos[0], SAMPLING, 4, 1, on_bad_video="ignore")


def test_skip_eval_marks_bad_videos_invalid_and_counts_them(good_and_bad_videos):
  entries, bad_indices = mixed_entries(good_and_bad_videos)
  log = element_plan.BadVideoLog()
  batches = evaluate(entries, on_bad_video="skip", bad_videos=log)
  assert len(batches) == 2 and all(b["video"].shape == (4, 1, 4, 16, 16, 3) for b in batches)
  index = np.concatenate([b["index"] for b in batches])
  valid = np.concatenate([b["valid"] for b in batches])
  np.testing.assert_array_equal(index, list(range(8)))
  np.testing.assert_array_equal(valid, [i not in bad_indices for i in range(8)])
  for batch in batches:
    keep = batch["valid"]
    assert_real_videos({k: v[keep] for k, v in batch.items()}, entries)
  assert log.count == 3
  assert log.reasons.keys() == set(good_and_bad_videos[1].values())
  for kind, path in good_and_bad_videos[1].items():
    assert REASONS[kind] in log.reasons[path]
  assert log.summary() == "3 videos skipped (bad input)"


def test_skip_train_substitutes_the_next_decodable_video(good_and_bad_videos):
  entries, bad_indices = mixed_entries(good_and_bad_videos)
  log = element_plan.BadVideoLog()
  with mock.patch.object(element_plan.logging, "warning") as warning:
    batches = train(entries, on_bad_video="skip", bad_videos=log)
  assert len(batches) == 7
  for batch in batches:
    assert batch["video"].shape == (3, 4, 16, 16, 3)
    assert not set(batch["index"].tolist()) & bad_indices
    assert_real_videos(batch, entries)
  # Position g visits order_e[g % 8]; a bad entry is replaced by the next good one (mod 8).
  visited = np.concatenate([b["index"] for b in batches])
  for position, got in enumerate(visited):
    wanted = element_plan.epoch_order(3, position // 8, 8)[position % 8]
    while wanted in bad_indices:
      wanted = (wanted + 1) % 8
    assert got == wanted, position
  assert log.count == 3 and warning.call_count == 3  # Logged once each, over 2+ epochs.
  assert all(path in str(call) for call, path in zip(
      sorted(warning.call_args_list, key=str), sorted(log.reasons)))
  # Deterministic, including where substitutions happen, and resumable.
  again = train(entries, on_bad_video="skip", start_step=4)
  for a, b in zip(batches[4:], again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_skip_train_with_no_decodable_video_raises(good_and_bad_videos):
  bad = [Entry(path, 1.0) for path in good_and_bad_videos[1].values()]
  with pytest.raises(video_io.VideoDecodeError, match="all 3 videos"):
    train(bad, on_bad_video="skip", num_steps=1)


def test_bad_video_log_is_thread_safe():
  log = element_plan.BadVideoLog()
  with mock.patch.object(element_plan.logging, "warning") as warning:
    threads = [threading.Thread(target=lambda t=t: [log.record(f"v{(t + i) % 10}", "r")
                                                   for i in range(200)]) for t in range(8)]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()
  assert log.count == 10 and warning.call_count == 10
  assert log.is_bad("v3") and not log.is_bad("v10")
  assert element_plan.BadVideoLog().summary() == "0 videos skipped (bad input)"


def test_shared_videos(shared_dir, tmp_path):
  shared = shared_dir / "videos"
  good = [Entry(str(shared / "tiny_192x144.mp4"), 1.0),
          Entry(str(shared / "lsvq_yfcc-batch3_1724_portrait.mp4"), 2.0)]
  empty = str(shared / "empty.mp4")
  truncated = truncated_copy(str(shared / "konvid_10053703034.mp4"), tmp_path / "konvid_cut.mp4")
  entries = [good[0], Entry(empty, 3.0), good[1], Entry(truncated, 4.0)]
  for path in (empty, truncated):
    with pytest.raises(video_io.VideoDecodeError, match=pathlib.Path(path).name):
      evaluate(good[:1] + [Entry(path, 1.0)])
  log = element_plan.BadVideoLog()
  batches = evaluate(entries, on_bad_video="skip", bad_videos=log)
  np.testing.assert_array_equal(batches[0]["valid"], [True, False, True, False])
  assert log.reasons.keys() == {empty, truncated}
  assert batches[0]["video"][[0, 2]].std(axis=(1, 2, 3, 4, 5)).min() > 0
  batch, = train(entries, on_bad_video="skip", num_steps=1, batch_size=4)
  assert set(batch["index"].tolist()) <= {0, 2} and batch["video"].std(axis=(1, 2, 3, 4)).min() > 0


def test_file_problems_tell_missing_from_links_folders_and_empty_files(tmp_path):
  (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
  (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
  (tmp_path / "dangling").symlink_to(tmp_path / "gone.mp4")
  (tmp_path / "folder").mkdir()
  (tmp_path / "empty.mp4").write_bytes(b"")
  (tmp_path / "ok.mp4").write_bytes(b"x")
  problems = {name: video_io.file_problem(str(tmp_path / name))
              for name in ("loop_a", "dangling", "folder", "empty.mp4", "missing.mp4", "ok.mp4")}
  assert problems == {"loop_a": "cannot be opened: Too many levels of symbolic links",
                      "dangling": "broken symbolic link (its target does not exist)",
                      "folder": "is a folder, not a file", "empty.mp4": "file is empty (0 bytes)",
                      "missing.mp4": "file does not exist", "ok.mp4": ""}
  with pytest.raises(video_io.VideoDecodeError, match=r"loop_a: cannot be opened: Too many levels"):
    video_io.probe(str(tmp_path / "loop_a"))
