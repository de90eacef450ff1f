"""Video decoding with OpenCV: probing and reading selected frames as RGB uint8 arrays.

Frames are decoded sequentially (`grab()` every frame, `retrieve()` only the requested ones),
because seeking in long-GOP codecs such as H.264 is slow and not always frame-accurate.

Rotation: phone videos often store landscape pixels with a display-matrix rotation. Captures are
opened with OpenCV's auto-rotation on (`CAP_PROP_ORIENTATION_AUTO`), under which OpenCV reports
the displayed (rotated) frame size and rotates every retrieved frame, so `probe` and
`read_frames` agree on the displayed orientation; `VideoInfo.rotation` records the angle.

Images: a file whose extension is in `IMAGE_EXTENSIONS` (jpg, png, bmp, tif, ...) is read with
`cv2.imread(IMREAD_COLOR)` as a one-frame video (fps 0), so the samplers and input pipelines work
on images unchanged with clip_len = 1 (the IQA variant). IMREAD_COLOR honours the EXIF orientation
(rotation 0 is reported: the size is already the displayed one), converts 16-bit and grayscale
images to 8-bit 3-channel, and drops alpha. An unreadable image is a VideoDecodeError naming it.
"""

from collections.abc import Iterator, Sequence
import contextlib
import dataclasses
import os

import cv2
import numpy as np


class VideoDecodeError(RuntimeError):
  """A video that cannot be decoded; the message names the file and the reason."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"{path}: {reason}")
    self.path = path
    self.reason = reason


class FrameIndexError(VideoDecodeError):
  """A requested frame lies beyond the decodable end; `num_decodable` frames could be decoded."""

  def __init__(self, path: str, index: int, num_decodable: int):
    super().__init__(path, f"frame index {index} was requested but only {num_decodable} "
                     f"frames are decodable")
    self.index = index
    self.num_decodable = num_decodable


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """Container metadata of a video: frame count, frame rate, displayed size, rotation (degrees)."""

  num_frames: int
  fps: float
  height: int
  width: int
  rotation: int = 0  # Clockwise display rotation from the metadata, already applied to the size.


IMAGE_EXTENSIONS = frozenset((".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"))


def is_image(path: str) -> bool:
  """Whether `path` is read as an image (by its extension, case-insensitive)."""
  return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _check_file(path: str) -> None:
  """Raises VideoDecodeError when `path` is missing or empty."""
  if not os.path.isfile(path):
    raise VideoDecodeError(path, "file does not exist")
  if os.path.getsize(path) == 0:
    raise VideoDecodeError(path, "file is empty (0 bytes)")


def read_image(path: str) -> np.ndarray:
  """Decodes an image file as displayed (EXIF orientation applied) RGB uint8 (H, W, 3)."""
  _check_file(path)
  try:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
  except cv2.error as e:
    raise VideoDecodeError(path, f"OpenCV error: {' '.join(str(e).split())}") from e
  if image is None or image.size == 0:
    raise VideoDecodeError(path, "OpenCV cannot decode it as an image (corrupt, truncated or an "
                           "unsupported format)")
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@contextlib.contextmanager
def _capture(path: str) -> Iterator[cv2.VideoCapture]:
  """Opens `path` with OpenCV, raising VideoDecodeError when it is missing, empty or unreadable."""
  _check_file(path)
  cap = cv2.VideoCapture(path)
  try:
    if not cap.isOpened():
      raise VideoDecodeError(path, "OpenCV cannot open it (not a video, or an unsupported "
                             "container or codec)")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # The default of the FFmpeg backend; made explicit.
    yield cap
  except cv2.error as e:
    raise VideoDecodeError(path, f"OpenCV error: {' '.join(str(e).split())}") from e
  finally:
    cap.release()


def _count_by_grabbing(cap: cv2.VideoCapture) -> int:
  """Counts the frames left in `cap` by grabbing them all."""
  count = 0
  while cap.grab():
    count += 1
  return count


def _rotation(cap: cv2.VideoCapture) -> int:
  """The metadata rotation in degrees (0, 90, 180 or 270); 0 when the backend reports none."""
  angle = int(cap.get(cv2.CAP_PROP_ORIENTATION_META))
  return angle % 360 if angle % 90 == 0 else 0


def probe(path: str) -> VideoInfo:
  """Returns frame count, fps, displayed size and rotation (counting frames if not in metadata).

  An image (`is_image`) is decoded and reported as 1 frame at fps 0.
  """
  if is_image(path):
    height, width = read_image(path).shape[:2]
    return VideoInfo(num_frames=1, fps=0.0, height=height, width=width)
  with _capture(path) as cap:
    rotation = _rotation(cap)
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    num_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if num_frames <= 0:
      num_frames = _count_by_grabbing(cap)
  if num_frames == 0:
    raise VideoDecodeError(path, "no decodable frames")
  return VideoInfo(num_frames=num_frames, fps=fps, height=height, width=width, rotation=rotation)


def _to_rgb(frame: np.ndarray) -> np.ndarray:
  """Converts an OpenCV frame (BGR, BGRA or grayscale) to 3-channel RGB."""
  if frame.ndim == 2 or frame.shape[-1] == 1:
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
  if frame.shape[-1] == 4:
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
  return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _decode_needed(cap: cv2.VideoCapture, path: str, needed: np.ndarray) -> dict[int, np.ndarray]:
  """Grabs frames 0..max(needed) and retrieves those in `needed` (sorted, unique) as RGB."""
  frames = {}
  wanted = set(needed.tolist())
  for i in range(int(needed[-1]) + 1):
    if not cap.grab():
      if i == 0:
        raise VideoDecodeError(path, "no decodable frames")
      raise FrameIndexError(path, int(needed[-1]), i)
    if i in wanted:
      ok, frame = cap.retrieve()
      if not ok or frame is None:
        raise VideoDecodeError(path, f"frame {i} was grabbed but could not be retrieved")
      frames[i] = _to_rgb(frame)
  return frames


def read_distinct_frames(path: str, indices: Sequence[int] | np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
  """Decodes each distinct frame of `indices` once: (frames (U, H, W, 3), inverse (n,)).

  `frames[inverse[i]]` is frame `indices[i]`; U is the number of distinct indices (sorted), so
  repeats (wrap-around, clamping, several clips on a short video) are decoded, stored and later
  processed once.
  """
  indices = np.asarray(indices, dtype=np.int64).reshape(-1)
  if indices.size == 0:
    raise ValueError(f"{path}: no frame indices requested")
  if indices.min() < 0:
    raise ValueError(f"{path}: negative frame index {int(indices.min())}")
  needed, inverse = np.unique(indices, return_inverse=True)
  if is_image(path):
    if needed[-1] > 0:
      raise FrameIndexError(path, int(needed[-1]), 1)
    return read_image(path)[None], inverse.reshape(-1)
  with _capture(path) as cap:
    frames = _decode_needed(cap, path, needed)
  shapes = {f.shape for f in frames.values()}
  if len(shapes) > 1:
    raise VideoDecodeError(path, f"frame size changes within the video: {sorted(shapes)}")
  return np.stack([frames[i] for i in needed.tolist()]), inverse.reshape(-1)


def read_frames(path: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
  """Decodes the frames at `indices` (any order, repeats allowed) as displayed RGB (n, H, W, 3)."""
  frames, inverse = read_distinct_frames(path, indices)
  return frames[inverse]
