"""SimpleVQA's frame sampler (data/sampling/frames_1fps.py): 1 frame/s, padding, resize, crops."""

import cv2
import numpy as np
import pytest
from tests.video_files import write_video

from vqa_jax.config import validation
from vqa_jax.data.sampling import frames_1fps
from vqa_jax.data.sampling import clip_sampler

HEIGHT, WIDTH, NUM_FRAMES, FPS = 20, 24, 25, 10.0
SAMPLING = {"method": "frames_1fps", "clip_len": 5, "frame_interval": 1, "grid": 1, "patch": 1,
            "short_side": 20, "crop": 16}


def coded_frames():
  """Frame t: channel 0 = row, channel 1 = column, channel 2 = 5 t (so a crop reads its origin)."""
  rows, cols = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), indexing="ij")
  frames = np.empty((NUM_FRAMES, HEIGHT, WIDTH, 3), np.uint8)
  frames[..., 0], frames[..., 1] = rows, cols
  frames[..., 2] = 5 * np.arange(NUM_FRAMES)[:, None, None]
  return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory):
  return write_video(tmp_path_factory.mktemp("frames") / "coded.mkv", coded_frames(), fps=FPS)


def test_frame_indices_at_one_per_second_with_padding():
  # r = round(29.97) = 30; 100 frames have key frames 0, 30, 60, 90; the last repeats.
  np.testing.assert_array_equal(frames_1fps.frame_indices(100, 29.97, 8),
                                [0, 30, 60, 90, 90, 90, 90, 90])
  np.testing.assert_array_equal(frames_1fps.frame_indices(250, 25.0, 8), np.arange(8) * 25)
  np.testing.assert_array_equal(frames_1fps.frame_indices(1, 30.0, 3), [0, 0, 0])
  np.testing.assert_array_equal(frames_1fps.frame_indices(5, 0.4, 3), [0, 1, 2])  # r >= 1
  with pytest.raises(ValueError, match="num_frames"):
    frames_1fps.frame_indices(0, 30.0, 8)


def test_resized_size_follows_the_reference_arithmetic():
  assert frames_1fps.resized_size(540, 960, 520) == (520, 924)  # int(520 / 540 * 960) = 924
  assert frames_1fps.resized_size(960, 540, 520) == (924, 520)  # portrait
  assert frames_1fps.resized_size(1080, 1920, 520) == (520, 924)
  assert frames_1fps.resized_size(520, 700, 520) == (520, 700)


def test_centre_crop_is_torchvision_centercrop():
  tops, lefts = frames_1fps.crop_origins(520, 924, 448, 3, None)
  assert tops.tolist() == [36] * 3 and lefts.tolist() == [238] * 3
  tops, lefts = frames_1fps.crop_origins(449, 451, 448, 1, None)  # round(0.5) = 0, round(1.5) = 2
  assert (tops[0], lefts[0]) == (0, 2)
  with pytest.raises(ValueError, match="larger"):
    frames_1fps.crop_origins(400, 500, 448, 1, None)


def test_centred_sampling_takes_key_frames_and_centre_crops(video):
  clips = clip_sampler.sample_clips(video, SAMPLING, num_clips=2)
  assert clips.shape == (2, 5, 16, 16, 3) and clips.dtype == np.uint8
  # 25 frames at 10 fps: key frames 0, 10, 20, then frame 20 repeated.
  np.testing.assert_array_equal(clips[0, :, 0, 0, 2], 5 * np.array([0, 10, 20, 20, 20]))
  np.testing.assert_array_equal(clips[:, :, 0, 0, 0], 2)  # top int(round((20 - 16) / 2))
  np.testing.assert_array_equal(clips[:, :, 0, 0, 1], 4)  # left int(round((24 - 16) / 2))
  np.testing.assert_array_equal(clips[0], clips[1])


def test_random_crops_are_drawn_per_frame_and_deterministic(video):
  clips = clip_sampler.sample_clips(video, SAMPLING, num_clips=1, rng=np.random.default_rng(7))
  again = clip_sampler.sample_clips(video, SAMPLING, num_clips=1, rng=np.random.default_rng(7))
  np.testing.assert_array_equal(clips, again)
  tops, lefts = frames_1fps.crop_origins(20, 24, 16, 5, np.random.default_rng(7))
  np.testing.assert_array_equal(clips[0, :, 0, 0, 0], tops)
  np.testing.assert_array_equal(clips[0, :, 0, 0, 1], lefts)
  assert len(set(zip(tops.tolist(), lefts.tolist()))) > 1  # frames are cropped independently
  assert tops.max() <= 4 and lefts.max() <= 8


def test_short_side_resize_is_opencv_bilinear(video):
  cfg = SAMPLING | {"short_side": 10, "crop": 10}
  clips = clip_sampler.sample_clips(video, cfg, num_clips=1)
  frame = coded_frames()[10]
  expected = cv2.resize(frame, (12, 10), interpolation=cv2.INTER_LINEAR)[:, 1:11]  # 10x12, left 1
  np.testing.assert_array_equal(clips[0, 1], expected)


def test_config_checks():
  with pytest.raises(ValueError, match="crop"):
    validation.check_sampling(SAMPLING | {"crop": 32})
  with pytest.raises(ValueError, match="frame rate"):
    clip_sampler.clip_indices(25, SAMPLING, 1)
