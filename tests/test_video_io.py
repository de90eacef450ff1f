"""Tests for vqa_jax.data.video_io on lossless FFV1 videos written here and on ../shared/videos."""

import cv2
import numpy as np
import pytest

from tests.video_files import random_frames
from tests.video_files import set_mp4_frame_durations
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


def report_properties(monkeypatch, reported: dict[int, float]) -> None:
  """Makes OpenCV captures report the `reported` property values (as odd containers do)."""
  real_capture = cv2.VideoCapture

  class Reporting:
    """Wraps a capture, answering `get` for the overridden properties."""

    def __init__(self, path):
      self._cap = real_capture(path)

    def get(self, prop):
      return reported[prop] if prop in reported else self._cap.get(prop)

    def __getattr__(self, name):
      return getattr(self._cap, name)

  monkeypatch.setattr(video_io.cv2, "VideoCapture", Reporting)


def test_probe_counts_frames_when_container_lacks_count(video, monkeypatch):
  report_properties(monkeypatch, {cv2.CAP_PROP_FRAME_COUNT: -1.0})
  assert video_io.probe(video[0]).num_frames == 12


@pytest.mark.parametrize("reported", [0.0, -5.0, float("nan"), float("inf")])
def test_probe_reports_unknown_fps_as_zero(video, monkeypatch, reported):
  report_properties(monkeypatch, {cv2.CAP_PROP_FPS: reported})
  assert video_io.probe(video[0]) == video_io.VideoInfo(num_frames=12, fps=0.0, height=24,
                                                        width=32)


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


# Variable frame rate: frames are addressed by their decode index; fps is the average rate.

VFR_DURATIONS_MS = [10, 90, 5, 200, 33, 33, 400, 1, 60, 70, 20, 50]  # 12 frames in 972 ms


def flat_frames(num_frames: int) -> np.ndarray:
  """24x32 frames where frame t is filled with 20 * t (distinguishable after lossy coding)."""
  values = 20 * np.arange(num_frames, dtype=np.uint8)
  return np.ascontiguousarray(np.broadcast_to(values[:, None, None, None],
                                              (num_frames, 24, 32, 3)))


@pytest.fixture(scope="module")
def cfr_and_vfr_mp4(tmp_path_factory):
  """The same 12 encoded frames as a 10 fps .mp4 and with VFR_DURATIONS_MS: (cfr, vfr) paths."""
  root = tmp_path_factory.mktemp("vfr")
  cfr = write_mp4(root / "cfr.mp4", flat_frames(12), fps=10.0)
  return cfr, set_mp4_frame_durations(cfr, root / "vfr.mp4", VFR_DURATIONS_MS)


def test_vfr_file_has_the_written_timestamps(cfr_and_vfr_mp4):
  cfr, vfr = cfr_and_vfr_mp4
  for path, starts_ms in ((cfr, 100.0 * np.arange(12)),
                          (vfr, np.cumsum([0] + VFR_DURATIONS_MS[:-1]))):
    cap = cv2.VideoCapture(path)
    stamps = [cap.get(cv2.CAP_PROP_POS_MSEC) for _ in iter(cap.grab, False)]
    np.testing.assert_allclose(stamps, starts_ms, atol=1e-6)


def test_vfr_probe_counts_every_frame_and_reports_the_average_rate(cfr_and_vfr_mp4):
  cfr, vfr = cfr_and_vfr_mp4
  assert video_io.probe(cfr).fps == pytest.approx(10.0)
  info = video_io.probe(vfr)
  assert info.num_frames == 12
  assert info.fps == pytest.approx(12 / 0.972)  # 12 frames in 972 ms, not the writer's 10 fps.


def test_vfr_frames_are_addressed_by_decode_index(cfr_and_vfr_mp4):
  cfr, vfr = cfr_and_vfr_mp4
  indices = [11, 0, 7, 3, 3, 8, 1]  # frame 7 lasts 1 ms, frame 6 lasts 400 ms: no effect.
  got = video_io.read_frames(vfr, indices)
  np.testing.assert_array_equal(got, video_io.read_frames(cfr, indices))  # the same bitstream
  # Lossy MPEG-4 moves the flat values by a few levels; frames are 20 levels apart.
  np.testing.assert_allclose(got.mean(axis=(1, 2, 3)), 20 * np.array(indices), atol=8)
  with pytest.raises(video_io.FrameIndexError, match="only 12 frames"):
    video_io.read_frames(vfr, [12])


# read_sampled_frames: indices chosen from the metadata of the one open capture.


def test_read_sampled_frames_chooses_from_metadata_with_one_opening(video, monkeypatch):
  path, frames = video
  openings = []
  real_capture = cv2.VideoCapture

  def counting_capture(*args):
    openings.append(args)
    return real_capture(*args)

  monkeypatch.setattr(video_io.cv2, "VideoCapture", counting_capture)
  seen = []
  got, inverse = video_io.read_sampled_frames(
      path, lambda info: seen.append(info) or [info.num_frames - 1, 0, 0, 5])
  assert seen == [video_io.VideoInfo(num_frames=12, fps=10.0, height=24, width=32)]
  assert len(openings) == 1
  np.testing.assert_array_equal(got[inverse], frames[[11, 0, 0, 5]])
  np.testing.assert_array_equal(inverse, [2, 0, 0, 1])  # distinct frames 0, 5, 11


def test_read_sampled_frames_counts_frames_when_container_lacks_count(video, monkeypatch):
  report_properties(monkeypatch, {cv2.CAP_PROP_FRAME_COUNT: -1.0})
  path, frames = video
  got, inverse = video_io.read_sampled_frames(path, lambda info: [info.num_frames - 1])
  np.testing.assert_array_equal(got[inverse], frames[[11]])


def test_read_sampled_frames_rechooses_when_count_is_overreported(video, monkeypatch, caplog):
  report_properties(monkeypatch, {cv2.CAP_PROP_FRAME_COUNT: 30.0})  # 12 frames decode
  path, frames = video
  seen = []
  got, inverse = video_io.read_sampled_frames(
      path, lambda info: seen.append(info.num_frames) or [0, info.num_frames - 1])
  assert seen == [30, 12]
  np.testing.assert_array_equal(got[inverse], frames[[0, 11]])
  assert "metadata says 30 frames but 12 decode" in caplog.text


def test_read_sampled_frames_on_image_and_vfr(tmp_path, cfr_and_vfr_mp4):
  image = random_frames(1, 9, 14)[0]
  path = str(tmp_path / "still.png")
  cv2.imwrite(path, image[..., ::-1])
  seen = []
  got, inverse = video_io.read_sampled_frames(path, lambda info: seen.append(info) or [0, 0])
  assert seen == [video_io.VideoInfo(num_frames=1, fps=0.0, height=9, width=14)]
  np.testing.assert_array_equal(got[inverse], image[None].repeat(2, axis=0))
  with pytest.raises(video_io.FrameIndexError, match="still.png"):
    video_io.read_sampled_frames(path, lambda info: [1])
  _, vfr = cfr_and_vfr_mp4
  fps = []
  video_io.read_sampled_frames(vfr, lambda info: fps.append(info.fps) or [0])
  assert fps == [pytest.approx(12 / 0.972)]
