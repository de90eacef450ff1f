"""SAMA sampling (data/sampling/sama.py) against paper §6.2 and §10 item 14, and hand values."""

import cv2
import numpy as np
import pytest
from tests.video_files import coordinate_frames
from tests.video_files import counting_video

from vqa_jax.data.sampling import sama
from vqa_jax.data.sampling import clip_sampler


def test_item14_scales_of_a_1080p_video():
  scales = sama.pair_scales(1080, 1920, 224, 16)
  assert len(scales) == 16 and scales[0] == 1.0
  assert abs(1080 / 224 - 4.8214) < 1e-4 and abs(scales[-1] - 0.2074) < 1e-4
  assert abs((scales[0] - scales[1]) - 0.0528) < 1e-4
  assert sama.scaled_size(1080, 1920, scales[-1]) == (224, 398)
  assert sama.upsampled_size(1080, 1920, 224) is None


def test_small_video_is_upsampled_by_rounding_and_keeps_scale_one():
  # 144x192: ratio 144/224, round(144 / ratio) = 224, round(192 / ratio) = round(298.67) = 299.
  assert sama.upsampled_size(144, 192, 224) == (224, 299)
  np.testing.assert_array_equal(sama.pair_scales(224, 299, 224, 16), np.ones(16))


def test_centred_fragments_per_pair_follow_the_scales():
  # 64x96 frames, grid 2 of 16 (side 32): ratio 2, 2 pairs with scales 1 and 0.5.
  frames = coordinate_frames(4, 64, 96)
  out = sama.sample_fragments(frames, np.arange(4), grid=2, patch=16, clip_len=4)
  assert out.shape == (4, 32, 32, 3)
  # Pair 0, scale 1: cells 32x48, bounds 16 / 32, centred int(0.5 * b) = 8 / 16.
  np.testing.assert_array_equal(out[0, ::16, ::16, 0], [[8, 8], [40, 40]])
  np.testing.assert_array_equal(out[0, ::16, ::16, 1], [[16, 64], [16, 64]])
  np.testing.assert_array_equal(out[1], frames[1][[*range(8, 24), *range(40, 56)]][
      :, [*range(16, 32), *range(64, 80)]])
  # Pair 1, scale 0.5 -> 32x48: cells 16x24, bounds 0 / 8, offsets 0 / 4; patches of the resized frame.
  resized = cv2.resize(frames[2], (48, 32), interpolation=cv2.INTER_LINEAR)
  np.testing.assert_array_equal(out[2, :16, :16], resized[0:16, 4:20])
  np.testing.assert_array_equal(out[2, 16:, 16:], resized[16:32, 28:44])


def test_random_fractions_are_shared_by_the_scales_of_a_clip():
  frames = coordinate_frames(4, 64, 96)
  out = sama.sample_fragments(frames, np.arange(4), 2, 16, 4, rng=np.random.default_rng(0))
  u = np.random.default_rng(0).random((2, 1, 2, 2))  # fractions h then w, (clips, grid, grid)
  tops_scale1 = np.array([0, 32])[:, None] + (u[0, 0] * 16).astype(int)
  lefts_scale1 = np.array([0, 48])[None, :] + (u[1, 0] * 32).astype(int)
  np.testing.assert_array_equal(out[0, ::16, ::16, 0], tops_scale1)
  np.testing.assert_array_equal(out[0, ::16, ::16, 1], lefts_scale1)
  np.testing.assert_array_equal(out[0], out[1, :, :, :] - np.array([0, 0, 1], np.uint8))


def test_masks_take_native_fragments_on_a_checkerboard():
  frames = coordinate_frames(4, 64, 96)
  plain = sama.sample_fragments(frames, np.arange(4), 2, 16, 4)
  for mask, square in (("patch", 4), ("window", 16)):
    masked = sama.sample_fragments(frames, np.arange(4), 2, 16, 4, mask=mask)
    cells = np.arange(32) // square
    keep_native = (cells[:, None] + cells[None, :]) % 2 == 0
    # Frame 2 (scale 0.5 in the plain result) takes the scale-1 patches where the mask is set.
    native = sama.sample_fragments(frames[[2, 2, 2, 2]], np.arange(4), 2, 16, 4)[0]
    np.testing.assert_array_equal(masked[2][keep_native], native[keep_native])
    np.testing.assert_array_equal(masked[2][~keep_native], plain[2][~keep_native])
  with pytest.raises(ValueError, match="mask must be one of"):
    sama.sample_fragments(frames, np.arange(4), 2, 16, 4, mask="grid")


def test_sample_clips_sama_clamps_and_centres(tmp_path):
  path = counting_video(tmp_path, 6)
  cfg = {"method": "sama", "clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8}
  clips = clip_sampler.sample_clips(path, cfg, num_clips=1)
  np.testing.assert_array_equal(clips[0, :, 0, 0, 0], [0, 2, 4, 5])  # 6 clamped to 5
  with pytest.raises(ValueError, match="clip_len=3 must be even"):
    clip_sampler.sample_clips(path, cfg | {"clip_len": 3}, num_clips=1)
