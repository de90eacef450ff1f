"""Test helpers: small lossless (FFV1) videos, MPEG-4 (.mp4) videos and labelled video sets."""

import pathlib
import struct

import cv2
import numpy as np

from vqa_jax.data.labels import Entry

# tkhd display matrices (a, b, u, c, d, v, x, y, w in 16.16 / 2.30 fixed point) by clockwise angle.
_ONE, _W = 1 << 16, 1 << 30
_ROTATION_MATRICES = {
    0: (_ONE, 0, 0, 0, _ONE, 0, 0, 0, _W),
    90: (0, _ONE, 0, -_ONE, 0, 0, 0, 0, _W),
    180: (-_ONE, 0, 0, 0, -_ONE, 0, 0, 0, _W),
    270: (0, -_ONE, 0, _ONE, 0, 0, 0, 0, _W),
}


def _write(path: pathlib.Path, frames: np.ndarray, fourcc: str, fps: float) -> str:
  """Writes RGB (T, H, W, 3) or gray (T, H, W) uint8 frames with OpenCV; returns the path."""
  is_color = frames.ndim == 4
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height),
                           isColor=is_color)
  assert writer.isOpened(), f"cannot write {path}"
  for frame in frames:
    writer.write(frame[..., ::-1] if is_color else frame)  # RGB -> BGR for OpenCV.
  writer.release()
  return str(path)


def write_video(path: pathlib.Path, frames: np.ndarray, fps: float = 10.0) -> str:
  """Writes RGB (T, H, W, 3) or gray (T, H, W) uint8 frames losslessly (FFV1); returns the path."""
  return _write(path, frames, "FFV1", fps)


def write_mp4(path: pathlib.Path, frames: np.ndarray, fps: float = 10.0) -> str:
  """Writes RGB uint8 frames as lossy MPEG-4 part 2 in .mp4 (index 'moov' at the end)."""
  return _write(path, frames, "mp4v", fps)


def set_mp4_rotation(src: str, dst: pathlib.Path, degrees: int) -> str:
  """Copies the .mp4 `src` to `dst` with a clockwise display rotation in its track header."""
  data = bytearray(pathlib.Path(src).read_bytes())
  box = data.find(b"tkhd")
  assert box > 0 and data.find(b"tkhd", box + 1) < 0, "expected exactly one track header"
  version = data[box + 4]
  # Skip type, version+flags, times/track id/reserved/duration, reserved(8), layer..volume(8).
  matrix = box + 8 + (28 if version == 1 else 20) + 16
  data[matrix:matrix + 36] = struct.pack(">9i", *_ROTATION_MATRICES[degrees])
  dst.write_bytes(bytes(data))
  return str(dst)


def random_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
  """Random RGB uint8 frames (num_frames, height, width, 3)."""
  return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), np.uint8)


def labelled_videos(root: pathlib.Path, num_videos: int, num_frames: int = 12,
                    size: tuple[int, int] = (20, 24)) -> list[Entry]:
  """Lossless videos v{i}.mkv whose frame t is filled with 20 * i + t, with MOS i + 0.5."""
  entries = []
  for i in range(num_videos):
    values = (20 * i + np.arange(num_frames)).astype(np.uint8)
    frames = np.ascontiguousarray(
        np.broadcast_to(values[:, None, None, None], (num_frames, *size, 3)))
    entries.append(Entry(path=write_video(root / f"v{i}.mkv", frames), mos=i + 0.5))
  return entries
