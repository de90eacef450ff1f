"""Evaluation over a split: file order, padding, multi-device batches and the bad-video policy."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.video_files import labelled_videos
from vqa_jax.evaluation import evaluate
from vqa_jax.runtime import sharding
from vqa_jax.data import labels
from vqa_jax.data import video_io

SAMPLING = ml_collections.ConfigDict({"clip_len": 2, "frame_interval": 1, "grid": 2, "patch": 8})


def mean_brightness(params, video):
  """A stand-in model: each video's mean pixel value (B, clips, T, H, W, 3) -> (B,)."""
  del params
  return video.astype(jnp.float32).reshape(video.shape[0], -1).mean(axis=1)


def predict_split(predict_fn, params, entries, sampling, batch_size, num_clips, mesh, **kwargs):
  """One model's (predictions, labels) over `entries` in file order."""
  preds, label = evaluate.predict_split_models(predict_fn, {"model": params}, entries, sampling,
                                               batch_size, num_clips, mesh, **kwargs)
  return preds["model"], label


def test_predictions_follow_file_order_across_padded_sharded_batches(tmp_path):
  entries = labelled_videos(tmp_path, 5)
  mesh = sharding.make_mesh(4)
  batch = evaluate.eval_batch_size(3, mesh)
  assert batch == 4
  preds, label = predict_split(jax.jit(mean_brightness), None, entries, SAMPLING, batch, 2, mesh)
  # Video i's frame t is filled with 20 i + t; two centred clips of 2 frames from 12 frames are
  # frames {2, 3} and {8, 9}: mean 20 i + 5.5.
  np.testing.assert_allclose(preds, 20 * np.arange(5) + 5.5)
  np.testing.assert_allclose(label, np.arange(5) + 0.5)


def test_bad_video_policy(tmp_path):
  entries = labelled_videos(tmp_path, 4)
  bad = tmp_path / "bad.mp4"
  bad.write_text("not a video")
  entries.insert(2, labels.Entry(str(bad), 9.0))
  mesh = sharding.make_mesh(1)
  with pytest.raises(video_io.VideoDecodeError, match="bad.mp4"):
    predict_split(jax.jit(mean_brightness), None, entries, SAMPLING, 2, 2, mesh)
  preds, label = predict_split(jax.jit(mean_brightness), None, entries, SAMPLING, 2, 2, mesh,
                               on_bad_video="skip")
  np.testing.assert_allclose(label, [0.5, 1.5, 2.5, 3.5])
  np.testing.assert_allclose(preds, 20 * np.arange(4) + 5.5)
  only_bad = [labels.Entry(str(bad), 1.0)] * 3
  with pytest.raises(ValueError, match="no decodable video"):
    predict_split(jax.jit(mean_brightness), None, only_bad, SAMPLING, 2, 2, mesh,
                  on_bad_video="skip")
