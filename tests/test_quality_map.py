"""vqa_jax.scoring.quality_map: per-clip maps, the middle sampled frames, and the picture."""

import cv2
import numpy as np
import pytest

from tests.video_files import labelled_videos
from vqa_jax.scoring import calibration
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.scoring import quality_map

SAMPLING = {"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 16}


def test_clip_maps_average_over_time():
  values = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
  maps = quality_map.clip_maps(values)
  # Clip 0, position (0, 0): frames hold 0, 4, 8 -> 4; clip 1 starts at 12 -> 16.
  assert maps.shape == (2, 2, 2)
  assert maps[0, 0, 0] == 4.0 and maps[1, 0, 0] == 16.0 and maps[1, 1, 1] == 19.0
  with pytest.raises(ValueError, match=r"\(clips, T', H', W'\)"):
    quality_map.clip_maps(values[0])


def middle_frame_indices(num_frames, sampling_cfg, num_clips):
  """The middle frame of each of `num_clips` clips of `clip_sampler.clip_indices`: (num_clips,)."""
  clip_len = sampling_cfg["clip_len"]
  indices = clip_sampler.clip_indices(num_frames, sampling_cfg, num_clips)
  return indices.reshape(num_clips, clip_len)[:, clip_len // 2]


def test_middle_frame_indices_by_hand():
  # 20 frames, 2 clips: segments of 10 from 0 and 10, span 4 * 2 = 8, centred offset 1:
  # clip 0 = 1, 3, 5, 7 and clip 1 = 11, 13, 15, 17; the middle (index 2) frames are 5 and 15.
  np.testing.assert_array_equal(middle_frame_indices(20, SAMPLING, 2), [5, 15])
  # 6 frames, 1 clip: offset 0, frames 0, 2, 4, 6 -> 0 (wrap-around); the middle one is 4.
  np.testing.assert_array_equal(middle_frame_indices(6, SAMPLING, 1), [4])


def test_middle_frames_decode_those_frames(tmp_path):
  # labelled_videos: frame t of video 0 is filled with the value t.
  entry = labelled_videos(tmp_path, 1, num_frames=20)[0]
  frames, _ = quality_map.sampled_frames(entry.path, SAMPLING, 2)
  assert frames.shape == (2, 20, 24, 3)
  assert frames[0].min() == frames[0].max() == 5
  assert frames[1].min() == frames[1].max() == 15


def test_draw_writes_the_documented_size(tmp_path):
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (4, 54, 96, 3), np.uint8)
  fragments = rng.integers(0, 256, (4, 64, 64, 3), np.uint8)
  png = tmp_path / "map.png"
  quality_map.draw(str(png), frames, fragments, rng.normal(size=(4, 8, 7, 7)), "title")
  # FAST-VQA-B's 4 clips, no curve: (2 * 3 + 1.2) in x (4 * 3 + 0.6) in at 100 dpi.
  assert cv2.imread(str(png)).shape == (1260, 720, 3)
  assert quality_map.figure_pixels(4, curve=False) == (720, 1260)
  indices = np.arange(4 * 32).reshape(4, 32)
  quality_map.draw(str(png), frames, fragments, rng.normal(size=(4, 8, 7, 7)), "title",
                   frame_indices=indices)
  # With the score-over-time curve: + 1.8 in.
  assert cv2.imread(str(png)).shape == (1440, 720, 3) and quality_map.figure_pixels(4) == (720, 1440)


def test_sampled_frames_return_the_clip_indices(tmp_path):
  entry = labelled_videos(tmp_path, 1, num_frames=20)[0]
  frames, indices = quality_map.sampled_frames(entry.path, SAMPLING, 2)
  # As test_middle_frame_indices_by_hand: clips 1, 3, 5, 7 and 11, 13, 15, 17.
  np.testing.assert_array_equal(indices, [[1, 3, 5, 7], [11, 13, 15, 17]])
  assert frames[0].max() == 5 and frames[1].max() == 15


def test_score_curve_by_hand():
  # 2 clips x 2 temporal positions x 1 x 2 cells; positions cover frames (1, 3) and (5, 7), ...
  values = np.array([[[[1.0, 3.0]], [[5.0, 7.0]]], [[[0.0, 0.0]], [[2.0, 4.0]]]])
  np.testing.assert_allclose(quality_map.score_curve(values, quality_map.Display()),
                             [[2.0, 6.0], [0.0, 3.0]])
  shown = quality_map.Display(transform=lambda x: 10 * np.asarray(x), limits=(0, 100))
  np.testing.assert_allclose(quality_map.score_curve(values, shown), [[20, 60], [0, 30]])
  np.testing.assert_allclose(
      quality_map.segment_positions(np.array([[1, 3, 5, 7], [11, 13, 15, 17]]), 2),
      [[2.0, 6.0], [12.0, 16.0]])
  with pytest.raises(ValueError, match="do not split"):
    quality_map.segment_positions(np.zeros((1, 4)), 3)


def test_the_calibrated_scale_is_the_same_for_every_video():
  fitted = calibration.Calibration(calibration.LOGISTIC, (4.5, 1.5, 0.0, 0.1), (1.0, 5.0), "v", 1)
  video_a = np.full((2, 2, 2, 2), -0.3)  # a poor video
  video_b = np.linspace(0.1, 0.4, 16).reshape(2, 2, 2, 2)  # a good one
  fixed = quality_map.display_for(fitted)
  assert (quality_map.shown_limits(fixed.transform(video_a), fixed)
          == quality_map.shown_limits(fixed.transform(video_b), fixed) == (1.0, 5.0))
  stretched = quality_map.display_for(fitted, per_video=True)
  limits_b = quality_map.shown_limits(stretched.transform(video_b), stretched)
  np.testing.assert_allclose(limits_b, fitted.mos(np.array([0.1, 0.4])))
  assert "per-video" in stretched.label and "MOS" in fixed.label
  uncalibrated = quality_map.display_for(None)
  assert uncalibrated.limits is None and "no calibration" in uncalibrated.label
  upstream = quality_map.display_for(calibration.upstream("FAST-VQA"))
  assert upstream.limits == (0.0, 1.0)


def test_draw_rejects_mismatched_clips(tmp_path):
  frames = np.zeros((2, 8, 8, 3), np.uint8)
  with pytest.raises(ValueError, match="3 clip maps but 2 frames"):
    quality_map.draw(str(tmp_path / "x.png"), frames, frames, np.zeros((3, 1, 2, 2)), "t")
