"""Test helpers: small lossless (FFV1) videos, MPEG-4 (.mp4) videos, labelled video sets and
broken files."""

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


# ISO base media (MP4) boxes holding other boxes, down to the sample table.
_CONTAINER_BOXES = frozenset((b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"))


def _parse_boxes(data: bytes) -> list[list]:
  """The box tree of MP4 bytes: [[type, children list or bytearray payload], ...]."""
  boxes, pos = [], 0
  while pos < len(data):
    size, kind = struct.unpack(">I4s", data[pos:pos + 8])
    assert size >= 8, "64-bit and to-end-of-file box sizes are not handled"
    body = data[pos + 8:pos + size]
    boxes.append([kind, _parse_boxes(body) if kind in _CONTAINER_BOXES else bytearray(body)])
    pos += size
  return boxes


def _serialize_boxes(boxes: list[list]) -> bytes:
  """MP4 bytes of a box tree, every box size recomputed from its contents."""
  out = bytearray()
  for kind, body in boxes:
    payload = _serialize_boxes(body) if isinstance(body, list) else bytes(body)
    out += struct.pack(">I4s", 8 + len(payload), kind) + payload
  return bytes(out)


def _box(boxes: list[list], *path: bytes):
  """The children (container) or payload (leaf) at the box-type `path`, first match per level."""
  for kind, body in boxes:
    if kind == path[0]:
      return body if len(path) == 1 else _box(body, *path[1:])
  raise KeyError(f"no {path[0]!r} box")


def set_mp4_frame_durations(src: str, dst: pathlib.Path, durations_ms: list[int]) -> str:
  """Copies the one-track .mp4 `src` to `dst` with per-frame durations: variable frame rate.

  Rewrites the time-to-sample table (stts: one entry per frame) in a 1 ms media timescale and the
  track / movie / edit-list durations to their sum; the encoded frames are untouched. The index
  ('moov') must follow the media data (OpenCV's writer puts it last), so that growing it moves no
  frame and the chunk offsets (stco) stay valid. Frame t then starts at sum(durations_ms[:t]) ms.
  """
  boxes = _parse_boxes(pathlib.Path(src).read_bytes())
  kinds = [kind for kind, _ in boxes]
  assert kinds.index(b"moov") > kinds.index(b"mdat"), "the index must follow the media data"
  moov = _box(boxes, b"moov")
  stts = _box(moov, b"trak", b"mdia", b"minf", b"stbl", b"stts")
  num_entries, num_samples = struct.unpack(">II", stts[4:12])
  assert num_entries == 1 and num_samples == len(durations_ms), (num_entries, num_samples)
  stts[4:] = struct.pack(f">I{2 * num_samples}I", num_samples,
                         *[value for duration in durations_ms for value in (1, duration)])
  total_ms = int(sum(durations_ms))
  # Version-0 full boxes: version/flags, creation and modification times, then the fields below.
  mdhd, mvhd = _box(moov, b"trak", b"mdia", b"mdhd"), _box(moov, b"mvhd")
  tkhd, elst = _box(moov, b"trak", b"tkhd"), _box(moov, b"trak", b"edts", b"elst")
  assert mdhd[0] == mvhd[0] == tkhd[0] == elst[0] == 0, "version-1 headers are not handled"
  mdhd[12:20] = struct.pack(">II", 1000, total_ms)  # media timescale (1/s), duration
  movie_timescale, = struct.unpack(">I", mvhd[12:16])
  movie_duration = struct.pack(">I", total_ms * movie_timescale // 1000)
  mvhd[16:20] = movie_duration
  tkhd[20:24] = movie_duration  # after the track id and a reserved word
  assert struct.unpack(">I", elst[4:8]) == (1,), "expected a single edit"
  elst[8:12] = movie_duration  # the edit's segment duration
  dst.write_bytes(_serialize_boxes(boxes))
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


def truncated_copy(src: str, dst: pathlib.Path, fraction: float = 0.3) -> str:
  """Writes the first `fraction` of the bytes of `src` to `dst` (an .mp4 loses its index)."""
  data = pathlib.Path(src).read_bytes()
  dst.write_bytes(data[:int(len(data) * fraction)])
  return str(dst)


def mixed_entries(good_and_bad) -> tuple[list[Entry], set[int]]:
  """Good videos 0-2, the three bad files, good videos 3-4; and the indices of the bad ones.

  `good_and_bad` is conftest's `good_and_bad_videos` fixture.
  """
  good, bad = good_and_bad
  entries = good[:3] + [Entry(path, 9.0) for path in bad.values()] + good[3:]
  return entries, {3, 4, 5}


def coordinate_frames(num_frames: int, height: int, width: int) -> np.ndarray:
  """Frames whose pixel (t, y, x) holds (y, x, t): a patch's values reveal where it came from."""
  t, y, x = np.meshgrid(np.arange(num_frames), np.arange(height), np.arange(width), indexing="ij")
  return np.stack([y, x, t], axis=-1).astype(np.uint8)


def counting_video(tmp_path: pathlib.Path, num_frames: int, name: str = "count.mkv") -> str:
  """A lossless 24x32 video whose frame t is filled with the value t."""
  frames = np.broadcast_to(np.arange(num_frames, dtype=np.uint8)[:, None, None, None],
                           (num_frames, 24, 32, 3))
  return write_video(tmp_path / name, np.ascontiguousarray(frames))
