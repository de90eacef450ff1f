"""Tests for vqa_jax.data.input_pipeline on tiny lossless videos written here."""

import ml_collections
import numpy as np
import pytest
from tests import tf_datasets
from tests.video_files import labelled_videos

from vqa_jax.data import host_split
from vqa_jax.data import input_pipeline
from vqa_jax.data import video_io
from vqa_jax.data.labels import Entry

# As in the configs: a ConfigDict that also holds fields the pipelines do not read.
SAMPLING = ml_collections.ConfigDict({"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8,
                                     "num_clips_train": 1, "num_clips_eval": 2})
NUM_VIDEOS = 5


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
  """Five 12-frame 20x24 videos; every pixel of frame t of video i holds 20 * i + t."""
  return labelled_videos(tmp_path_factory.mktemp("videos"), NUM_VIDEOS)


def collect(ds) -> list[dict[str, np.ndarray]]:
  """All batches of `ds` as numpy dicts."""
  return list(input_pipeline.as_numpy(ds))


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def assert_consistent_with_entries(batch, entries):
  """Labels and video contents belong to the entries named by `index`."""
  np.testing.assert_array_equal(batch["label"], [entries[i].mos for i in batch["index"]])
  video_ids = batch["video"].reshape(len(batch["index"]), -1) // 20
  np.testing.assert_array_equal(video_ids, np.broadcast_to(batch["index"][:, None],
                                                           video_ids.shape))


def train(entries, **kwargs):
  """Collected training batches with batch size 2 and seed 7 unless overridden."""
  args = {"batch_size": 2, "seed": 7, "num_steps": 5} | kwargs
  return collect(tf_datasets.train_dataset(entries, SAMPLING, **args))


def test_train_shapes_dtypes_and_contents(entries):
  batches = train(entries, num_steps=3)
  assert len(batches) == 3
  for batch in batches:
    assert batch["video"].shape == (2, 4, 16, 16, 3) and batch["video"].dtype == np.uint8
    assert batch["label"].shape == (2,) and batch["label"].dtype == np.float32
    assert batch["index"].shape == (2,) and batch["index"].dtype == np.int32
    assert_consistent_with_entries(batch, entries)
  multi = train(entries, num_steps=1, num_clips=2)[0]
  assert multi["video"].shape == (2, 2, 4, 16, 16, 3)


def test_train_epochs_are_seeded_permutations(entries):
  # 5 steps of 2 = 10 positions = two epochs of the 5 videos; a batch straddles the boundary.
  order = np.concatenate([b["index"] for b in train(entries)])
  for epoch in range(2):
    expected = np.random.default_rng([7, epoch]).permutation(NUM_VIDEOS)
    np.testing.assert_array_equal(order[5 * epoch:5 * (epoch + 1)], expected)


def test_train_is_deterministic_and_seed_dependent(entries):
  first = train(entries)
  assert_batches_equal(first, train(entries))
  other = train(entries, seed=8)
  assert any(not np.array_equal(a["video"], b["video"]) for a, b in zip(first, other))


def test_train_resume_yields_the_uninterrupted_batches(entries):
  full = train(entries)
  assert_batches_equal(train(entries, start_step=3), full[3:])
  assert not train(entries, start_step=5)


def test_eval_pads_with_real_copies(entries):
  batches = collect(tf_datasets.eval_dataset(entries, SAMPLING, batch_size=4, num_clips=2))
  assert len(batches) == 2
  for batch in batches:
    assert batch["video"].shape == (4, 2, 4, 16, 16, 3) and batch["video"].dtype == np.uint8
    assert batch["valid"].dtype == np.bool_
    assert_consistent_with_entries(batch, entries)
  np.testing.assert_array_equal(np.concatenate([b["index"] for b in batches]),
                                [0, 1, 2, 3, 4, 0, 1, 2])
  np.testing.assert_array_equal(np.concatenate([b["valid"] for b in batches]),
                                [True] * 5 + [False] * 3)
  # Padding repeats real elements exactly (deterministic centred sampling, never zeros).
  np.testing.assert_array_equal(batches[1]["video"][1:], batches[0]["video"][:3])
  # N=12, K=2: segments of 6 <= span 8, so offset 0: frames 0, 2, 4, 6 and 6, 8, 10, 0.
  np.testing.assert_array_equal(batches[0]["video"][0, :, :, 0, 0, 0],
                                [[0, 2, 4, 6], [6, 8, 10, 0]])


@pytest.mark.parametrize("build", [
    lambda e: tf_datasets.train_dataset(e, SAMPLING, batch_size=2, seed=0, num_steps=1),
    lambda e: tf_datasets.eval_dataset(e, SAMPLING, batch_size=2, num_clips=1),
])
def test_missing_file_raises_naming_it(entries, tmp_path, build):
  missing = str(tmp_path / "not_there.mp4")
  with pytest.raises(FileNotFoundError, match=r"1 of 6 videos are missing") as e:
    build(entries + [Entry(missing, 1.0)])
  assert f"{missing} (file does not exist)" in str(e.value)


def test_symlink_loop_is_named_as_such(entries, tmp_path):
  loop = tmp_path / "loop.mp4"
  loop.symlink_to(loop)
  with pytest.raises(FileNotFoundError, match=r"1 of 6 videos are missing") as e:
    tf_datasets.eval_dataset(entries + [Entry(str(loop), 1.0)], SAMPLING, 2, 1)
  assert f"{loop} (cannot be opened: Too many levels of symbolic links)" in str(e.value)


def test_bad_file_in_dataset_raises_naming_it(entries, tmp_path):
  bad = tmp_path / "bad.mp4"
  bad.write_bytes(b"")
  ds = tf_datasets.eval_dataset(entries[:1] + [Entry(str(bad), 1.0)], SAMPLING, batch_size=2,
                                num_clips=1)
  with pytest.raises(video_io.VideoDecodeError, match="empty") as e:
    collect(ds)
  assert str(e.value).startswith(f"{bad}: ")
  # Iterated directly, TensorFlow's own error still names the file.
  with pytest.raises(Exception, match="bad.mp4"):
    list(ds)


def test_train_hosts_read_disjoint_slices_of_the_global_batches(entries):
  whole = train(entries, batch_size=4, num_steps=3, process_index=0, process_count=1)
  hosts = [train(entries, batch_size=4, num_steps=3, process_index=p, process_count=2)
           for p in range(2)]
  for step, batch in enumerate(whole):
    halves = [h[step] for h in hosts]
    assert all(len(half["index"]) == 2 for half in halves)
    for key in batch:
      np.testing.assert_array_equal(np.concatenate([half[key] for half in halves]), batch[key])


def test_eval_hosts_pad_equally_and_gather_back_in_file_order(entries):
  def run(process_index, process_count):
    return collect(tf_datasets.eval_dataset(entries, SAMPLING, batch_size=4, num_clips=1,
                                            process_index=process_index,
                                            process_count=process_count))
  hosts = [run(p, 2) for p in range(2)]
  assert len(hosts[0]) == len(hosts[1]) == 2  # ceil(5 / 4) global batches each
  per_host = [{k: np.concatenate([b[k] for b in h]) for k in h[0]} for h in hosts]
  index = host_split.gather_in_order([h["index"] for h in per_host], 4, NUM_VIDEOS)
  np.testing.assert_array_equal(index, np.arange(NUM_VIDEOS))
  assert sum(int(h["valid"].sum()) for h in per_host) == NUM_VIDEOS
  single = collect(tf_datasets.eval_dataset(entries, SAMPLING, batch_size=4, num_clips=1,
                                            process_index=0, process_count=1))
  np.testing.assert_array_equal(
      host_split.gather_in_order([h["video"] for h in per_host], 4, NUM_VIDEOS),
      np.concatenate([b["video"] for b in single])[:NUM_VIDEOS])


def test_eval_random_offsets_are_seeded_and_differ_from_centred(tmp_path):
  # 40 frames, 2 clips: segments of 20, span 8, so the offsets range over {0, ..., 11}.
  entry = labelled_videos(tmp_path, 1, num_frames=40)
  def first_frames(**overrides):
    sampling = ml_collections.ConfigDict(dict(SAMPLING) | overrides)
    batch = collect(tf_datasets.eval_dataset(entry, sampling, batch_size=1, num_clips=2))[0]
    return batch["video"][0, :, :, 0, 0, 0]  # (clips, T): the frame values, 20 * 0 + t
  centred = first_frames()
  np.testing.assert_array_equal(centred, [[6, 8, 10, 12], [26, 28, 30, 32]])
  random_a = first_frames(eval_offsets="random", eval_seed=1)
  np.testing.assert_array_equal(random_a, first_frames(eval_offsets="random", eval_seed=1))
  draws = [first_frames(eval_offsets="random", eval_seed=s)[:, 0] for s in range(6)]
  assert len({tuple(d) for d in draws}) > 1
  for d in draws:
    assert 0 <= d[0] <= 11 and 20 <= d[1] <= 31


def test_train_autoaugment_changes_some_clips_deterministically(entries):
  plain = train(entries, num_steps=4)
  augmented = train(entries, num_steps=4, augment="autoaugment")
  np.testing.assert_array_equal(augmented[0]["video"],
                                train(entries, num_steps=4, augment="autoaugment")[0]["video"])
  changed = [not np.array_equal(a["video"], p["video"]) for a, p in zip(augmented, plain)]
  assert any(changed)
  for a, p in zip(augmented, plain):
    np.testing.assert_array_equal(a["index"], p["index"])
