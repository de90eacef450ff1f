"""NVDEC's YUV -> RGB conversion against OpenCV's capture of stored YUV 4:2:0 frames."""

import pathlib

import cv2
import numpy as np
import pytest

from vqa_jax.data.decoders import colour

HEIGHT, WIDTH = 48, 64


def _yuv_frames(num_frames: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Random studio-range Y, U, V planes (noise chroma: the hardest case for chroma rounding)."""
  rng = np.random.default_rng(seed)
  plane = lambda low, high, h, w: rng.integers(low, high, (h, w), dtype=np.uint8)
  return [(plane(16, 236, HEIGHT, WIDTH), plane(16, 241, HEIGHT // 2, WIDTH // 2),
           plane(16, 241, HEIGHT // 2, WIDTH // 2)) for _ in range(num_frames)]


def _write_y4m(path: pathlib.Path, frames, full_range: bool) -> str:
  """Stores the planes as a YUV4MPEG2 file (4:2:0), tagged full or studio range."""
  tag = "FULL" if full_range else "LIMITED"
  with open(path, "wb") as f:
    f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F25:1 Ip A1:1 C420jpeg XCOLORRANGE={tag}\n".encode())
    for planes in frames:
      f.write(b"FRAME\n" + b"".join(p.tobytes() for p in planes))
  return str(path)


def _opencv_rgb(path: str) -> np.ndarray:
  """Every frame as OpenCV's capture converts it, RGB."""
  cap = cv2.VideoCapture(path)
  frames = []
  while True:
    ok, bgr = cap.read()
    if not ok:
      break
    frames.append(bgr[..., ::-1])
  cap.release()
  return np.stack(frames)


def _i420(planes) -> np.ndarray:
  y, u, v = planes
  return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(-1, WIDTH)


def _nv12(planes) -> np.ndarray:
  y, u, v = planes
  return np.concatenate([y, np.stack([u, v], axis=-1).reshape(HEIGHT // 2, WIDTH)])


def _reference(planes, kr: float, kb: float, full_range: bool) -> np.ndarray:
  """The textbook float conversion (Rec. 601/709 equations), rounded."""
  y, u, v = (p.astype(np.float64) for p in planes)
  u = np.repeat(np.repeat(u - 128, 2, 0), 2, 1)
  v = np.repeat(np.repeat(v - 128, 2, 0), 2, 1)
  if not full_range:
    y, u, v = (y - 16) * 255 / 219, u * 255 / 224, v * 255 / 224
  r = y + 2 * (1 - kr) * v
  b = y + 2 * (1 - kb) * u
  g = (y - kr * r - kb * b) / (1 - kr - kb)
  return np.clip(np.rint(np.stack([r, g, b], -1)), 0, 255)


@pytest.mark.parametrize("full_range", [False, True])
def test_conversion_matches_opencv_capture_within_two_levels(tmp_path, full_range):
  frames = _yuv_frames(3)
  opencv = _opencv_rgb(_write_y4m(tmp_path / "yuv.y4m", frames, full_range)).astype(int)
  assert opencv.shape == (3, HEIGHT, WIDTH, 3)
  conversion = colour.conversion_for(matrix_coefficients=2, full_range=full_range)  # unspecified
  from_nv12 = np.asarray(colour.nv12_to_rgb(np.stack([_nv12(f) for f in frames]), conversion))
  from_i420 = np.asarray(colour.i420_to_rgb(np.stack([_i420(f) for f in frames]), conversion))
  np.testing.assert_array_equal(from_nv12, from_i420)
  difference = np.abs(from_nv12.astype(int) - opencv)
  # Measured: max 2 (mean 0.45) on noise chroma; BT.709 or the other range would be >= 20 off.
  assert difference.max() <= 2, difference.max()
  assert difference.mean() < 0.6
  other = colour.Conversion("bt601", not full_range)
  assert np.abs(np.asarray(colour.i420_to_rgb(_i420(frames[0]), other)).astype(int)
                - opencv[0]).max() >= 15


@pytest.mark.parametrize("matrix,kr,kb", [("bt601", 0.299, 0.114), ("bt709", 0.2126, 0.0722)])
@pytest.mark.parametrize("full_range", [False, True])
def test_conversion_follows_the_textbook_equations(matrix, kr, kb, full_range):
  planes = _yuv_frames(1, seed=4)[0]
  converted = np.asarray(colour.i420_to_rgb(_i420(planes), colour.Conversion(matrix, full_range)))
  # Truncation instead of rounding (as swscale): never above, at most one level below.
  difference = _reference(planes, kr, kb, full_range) - converted
  assert 0 <= difference.min() and difference.max() <= 1


def test_stream_metadata_chooses_matrix_and_range():
  assert colour.conversion_for(1, False) == colour.Conversion("bt709", False)
  assert colour.conversion_for(5, True) == colour.Conversion("bt601", True)
  assert colour.conversion_for(6, False) == colour.Conversion("bt601", False)
  assert colour.conversion_for(2, False) == colour.Conversion("bt601", False)  # unspecified
