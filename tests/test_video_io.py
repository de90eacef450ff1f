"""Tests for vqa_jax.data.video_io on lossless FFV1 videos written here and on ../shared/videos."""

import pathlib

import cv2
import numpy as np
import pytest

from tests.video_files import random_frames
from tests.video_files import set_mp4_rotation
from tests.video_files import write_mp4
from tests.video_files import write_video
from vqa_jax.data import video_io


@pytest.fixture
def video(tmp_path):
  """A 12-frame 24x32 lossless video and its RGB frames."""
  frames = random_frames(12, 24, 32)
  return write_video(tmp_path / "clip.mkv", frames), frames


def test_probe(video):
  path, _ = video
  assert video_io.probe(path) == video_io.VideoInfo(num_frames=12, fps=10.0, height=24, width=32)


def test_probe_counts_frames_when_container_lacks_count(video, monkeypatch):

  real_capture = cv2.VideoCapture

  class NoFrameCount:
    """Wraps a capture, reporting the frame count as missing (-1) like some containers do."""

    def __init__(self, path):
      self._cap = real_capture(path)

    def get(self, prop):
      return -1.0 if prop == cv2.CAP_PROP_FRAME_COUNT else self._cap.get(prop)

    def __getattr__(self, name):
      return getattr(self._cap, name)

  monkeypatch.setattr(video_io.cv2, "VideoCapture", NoFrameCount)
  assert video_io.probe(video[0]).num_frames == 12


def test_read_frames_unsorted_repeated_indices(video):
  path, frames = video
  indices = [7, 0, 7, 11, 3, 3, 0]
  got = video_io.read_frames(path, indices)
  assert got.dtype == np.uint8 and got.shape == (7, 24, 32, 3)
  np.testing.assert_array_equal(got, frames[indices])
  cap = cv2.VideoCapture(path)
  full = np.stack([cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(12)])
  np.testing.assert_array_equal(got, full[indices])


def test_grayscale_source_gives_three_channels(tmp_path):
  gray = random_frames(4, 16, 20)[..., 0]
  path = write_video(tmp_path / "gray.mkv", gray)
  got = video_io.read_frames(path, [2, 0])
  assert got.shape == (2, 16, 20, 3)
  for channel in range(3):
    np.testing.assert_array_equal(got[..., channel], gray[[2, 0]])


def test_index_beyond_end_names_file_index_and_count(video):
  path, _ = video
  with pytest.raises(video_io.FrameIndexError, match=r"frame index 12 .* only 12 frames") as e:
    video_io.read_frames(path, [0, 12])
  assert path in str(e.value) and e.value.num_decodable == 12


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, not a video\n" * 20), "cannot open"),
])
def test_errors_name_the_file(tmp_path, make, reason):
  path = tmp_path / "broken.mp4"
  make(path)
  for call in (video_io.probe, lambda p: video_io.read_frames(p, [0])):
    with pytest.raises(video_io.VideoDecodeError, match=reason) as e:
      call(str(path))
    assert str(path) in str(e.value)


def test_shared_konvid_probes_and_decodes(shared_dir):
  path = str(shared_dir / "videos" / "konvid_10053703034.mp4")
  info = video_io.probe(path)
  assert (info.height, info.width) == (540, 960)
  frames = video_io.read_frames(path, [info.num_frames - 1, 0])
  assert frames.shape == (2, 540, 960, 3) and frames.dtype == np.uint8
  assert frames.std() > 0


def test_shared_empty_raises_naming_it(shared_dir):
  path = str(shared_dir / "videos" / "empty.mp4")
  with pytest.raises(video_io.VideoDecodeError, match="empty.mp4"):
    video_io.read_frames(path, [0])


# Rotation metadata (phone videos): probe and read_frames both give the displayed orientation.


@pytest.fixture(scope="module")
def unrotated_mp4(tmp_path_factory):
  """A 5-frame 24x32 .mp4 with a bright top-left corner, and its decoded frames."""
  frames = np.zeros((5, 24, 32, 3), np.uint8)
  frames[:, :8, :8] = 255
  frames[:, :, :, 1] = 40 * np.arange(5)[:, None, None]
  path = write_mp4(tmp_path_factory.mktemp("rot") / "upright.mp4", frames)
  return path, video_io.read_frames(path, range(5))


@pytest.mark.parametrize("degrees, k", [(0, 0), (90, -1), (180, 2), (270, 1)])
def test_rotation_metadata_gives_displayed_frames(unrotated_mp4, tmp_path, degrees, k):
  path, upright = unrotated_mp4
  rotated = set_mp4_rotation(path, tmp_path / f"r{degrees}.mp4", degrees)
  info = video_io.probe(rotated)
  assert info.rotation == degrees
  frames = video_io.read_frames(rotated, [4, 0])
  assert frames.shape[1:3] == (info.height, info.width)
  assert (info.height, info.width) == ((32, 24) if degrees % 180 else (24, 32))
  # np.rot90 with k = -1 turns clockwise: the bright corner goes top-left -> top-right at 90.
  np.testing.assert_array_equal(frames, np.rot90(upright[[4, 0]], k, axes=(1, 2)))


def test_shared_portrait_probe_matches_frames(shared_dir):
  path = str(shared_dir / "videos" / "lsvq_yfcc-batch3_1724_portrait.mp4")
  info = video_io.probe(path)
  # Stored portrait (406 wide, 720 high, identity display matrix), so no rotation to apply.
  assert info.rotation == 0 and (info.height, info.width) == (720, 406)
  frames = video_io.read_frames(path, [0, info.num_frames - 1])
  assert frames.shape == (2, info.height, info.width, 3)
