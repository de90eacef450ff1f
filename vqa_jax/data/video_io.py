"""Video decoding with OpenCV: probing and reading selected frames as RGB uint8 arrays.

Frames are decoded sequentially (`grab()` every frame, `retrieve()` only the requested ones),
because seeking in long-GOP codecs such as H.264 is slow and not always frame-accurate.

Rotation: phone videos often store landscape pixels with a display-matrix rotation. Captures are
opened with OpenCV's auto-rotation on (`CAP_PROP_ORIENTATION_AUTO`), under which OpenCV reports
the displayed (rotated) frame size and rotates every retrieved frame, so `probe` and
`read_frames` agree on the displayed orientation; `VideoInfo.rotation` records the angle.

Variable frame rate (VFR): frames are addressed by their position in the decoded stream (the
order the decoder returns them, i.e. presentation order), as every sampler here does (FAST-VQA's `FragmentSampleFrames` also counts frames, not seconds); timestamps are never
read, so a VFR video gives exactly the frames asked for and `num_frames` counts them all.
`VideoInfo.fps` is the AVERAGE frame rate, num_frames / duration: it is what OpenCV's FFmpeg
backend reports (the stream's avg_frame_rate; for MP4 that is the sample count over the summed
time-to-sample durations), so for constant-rate video it is the nominal rate, and a
"one frame per second" sampler (SimpleVQA: every round(fps)-th frame) takes one frame per second
of playback on average. When the container gives no usable rate (missing, zero, negative or not
finite), `fps` is 0.0: callers must treat 0 as unknown. MP4/MOV list the frame count exactly
(tested on a VFR MP4 in tests/test_video_io.py). Containers without a count (Matroska, WebM)
get OpenCV's estimate duration x fps, which a VFR stream can make wrong: an over-estimate is
caught when decoding stops early (`FrameIndexError`, and `read_sampled_frames` / the samplers
re-sample from the frames that decode); an under-estimate leaves the last frames unsampled.

Images: a file whose extension is in `IMAGE_EXTENSIONS` (jpg, png, bmp, tif, ...) is read with
`cv2.imread(IMREAD_COLOR)` as a one-frame video (fps 0), so the samplers and input pipelines work
on images unchanged with clip_len = 1 (the IQA variant). IMREAD_COLOR honours the EXIF orientation
(rotation 0 is reported: the size is already the displayed one), converts 16-bit and grayscale
images to 8-bit 3-channel, and drops alpha. An unreadable image is a VideoDecodeError naming it.

File names: OpenCV is never given a name it would misread (`opencv_name`, decided from the string
alone, so an ordinary name costs nothing). OpenCV's Python binding converts a str to UTF-8 without
checking that this succeeded, so a name that is not UTF-8 on disk (Python's surrogate-escaped str,
e.g. 'caf\\udce9.mp4' for the bytes b'caf\\xe9.mp4') segfaults `cv2.VideoCapture`, `cv2.imread`,
`cv2.imwrite` and `cv2.VideoWriter`; such a name is given as its bytes (`os.fsencode`), which the
binding passes through unchanged (the package's writers use `opencv_name` too).
FFmpeg takes a relative name whose first part holds a colon ('http:a.mp4', 'pipe:a.mp4') as a
protocol (a host name to look up, a pipe; the file is never read), so such a name gets './' in
front. Names with '%' ('a%d.mp4') need nothing: FFmpeg opens the existing file by its literal
name. A name that cannot be a file name at all (a NUL, a surrogate that stands for no byte) is a
VideoDecodeError via `file_problem`. Messages show a non-UTF-8 name with its bytes escaped
(`printable_path`: 'caf\\xe9.mp4'), so printing them never fails.
"""

from collections.abc import Callable, Iterator, Sequence
import contextlib
import dataclasses
import math
import os
import stat
import threading

from absl import logging
import cv2
import numpy as np


def printable_path(path: str) -> str:
  """`path` as text that any stream can print: bytes that are not UTF-8 shown as '\\xe9'."""
  try:
    return os.fsencode(path).decode("utf-8", "backslashreplace")
  except UnicodeError:  # A surrogate that stands for no byte (not from a file system name).
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


class VideoDecodeError(RuntimeError):
  """A video that cannot be decoded; the message names the file (printable_path) and the reason."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"{printable_path(path)}: {reason}")
    self.path = path
    self.reason = reason

  def __reduce__(self):
    return type(self), (self.path, self.reason)


class FrameIndexError(VideoDecodeError):
  """A requested frame lies beyond the decodable end; `num_decodable` frames could be decoded."""

  def __init__(self, path: str, index: int, num_decodable: int):
    super().__init__(path, f"frame index {index} was requested but only {num_decodable} "
                     f"frames are decodable")
    self.index = index
    self.num_decodable = num_decodable

  def __reduce__(self):
    return type(self), (self.path, self.index, self.num_decodable)


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """Container metadata of a video: frame count, frame rate, displayed size, rotation (degrees)."""

  num_frames: int
  fps: float  # Average frames per second (num_frames / duration, also for VFR); 0.0 if unknown.
  height: int
  width: int
  rotation: int = 0  # Clockwise display rotation from the metadata, already applied to the size.


IMAGE_EXTENSIONS = frozenset((".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"))


def is_image(path: str) -> bool:
  """Whether `path` is read as an image (by its extension, case-insensitive)."""
  return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def file_problem(path: str) -> str:
  """Why `path` is not a readable, non-empty regular file ('' when it is one).

  Tells a missing file from a broken or looping symbolic link, a folder and an unreadable file.
  """
  try:
    st = os.stat(path)
  except ValueError as e:  # A NUL, or a surrogate that no file name byte stands for.
    return f"the name is not a valid file name ({e})"
  except FileNotFoundError:
    return ("broken symbolic link (its target does not exist)" if os.path.islink(path)
            else "file does not exist")
  except OSError as e:  # ELOOP (a symbolic link loop), EACCES on a parent folder, ...
    return f"cannot be opened: {e.strerror}"
  if stat.S_ISDIR(st.st_mode):
    return "is a folder, not a file"
  if not stat.S_ISREG(st.st_mode):
    return "is not a regular file"
  if not os.access(path, os.R_OK):
    return "cannot be opened: permission denied"
  if st.st_size == 0:
    return "file is empty (0 bytes)"
  return ""


def opencv_name(path: str) -> str | bytes:
  """The name under which OpenCV reads or writes `path` as that file (module docstring, "File
  names"): the bytes of a name that is not UTF-8; './' before a relative name whose first part has
  a colon. Every cv2 call given a file name in this package goes through it."""
  if ":" in path.split(os.sep, 1)[0] and not os.path.isabs(path):
    path = os.path.join(os.curdir, path)
  if path.isascii():
    return path
  try:
    path.encode("utf-8")
  except UnicodeEncodeError:
    return os.fsencode(path)
  return path


def _check_file(path: str) -> None:
  """Raises VideoDecodeError naming `file_problem(path)` unless it is a readable, non-empty file."""
  problem = file_problem(path)
  if problem:
    raise VideoDecodeError(path, problem)


def read_image(path: str) -> np.ndarray:
  """Decodes an image file as displayed (EXIF orientation applied) RGB uint8 (H, W, 3)."""
  _check_file(path)
  try:
    image = cv2.imread(opencv_name(path), cv2.IMREAD_COLOR)
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
  cap = cv2.VideoCapture(opencv_name(path))
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


def _average_fps(cap: cv2.VideoCapture) -> float:
  """The stream's average frame rate (frames / duration: module docstring); 0.0 if unknown."""
  fps = float(cap.get(cv2.CAP_PROP_FPS))
  return fps if math.isfinite(fps) and fps > 0 else 0.0


def _metadata(cap: cv2.VideoCapture) -> VideoInfo:
  """The container's metadata of an open capture; num_frames <= 0 when it lists no count."""
  return VideoInfo(num_frames=int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), fps=_average_fps(cap),
                   height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                   width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), rotation=_rotation(cap))


def _image_info(image: np.ndarray) -> VideoInfo:
  """An image as a video: 1 frame, fps 0 (unknown), its size."""
  return VideoInfo(num_frames=1, fps=0.0, height=image.shape[0], width=image.shape[1])


def _counted(path: str, cap: cv2.VideoCapture, info: VideoInfo) -> VideoInfo:
  """`info` with the frames left in `cap` counted by grabbing; VideoDecodeError if none decode."""
  num_frames = _count_by_grabbing(cap)
  if num_frames == 0:
    raise VideoDecodeError(path, "no decodable frames")
  return dataclasses.replace(info, num_frames=num_frames)


def probe(path: str) -> VideoInfo:
  """Returns frame count, average fps, displayed size and rotation (frames counted if unlisted).

  An image (`is_image`) is decoded and reported as 1 frame at fps 0. For a variable-frame-rate
  video `fps` is the average rate, num_frames / duration (module docstring).
  """
  if is_image(path):
    return _image_info(read_image(path))
  with _capture(path) as cap:
    info = _metadata(cap)
    return info if info.num_frames > 0 else _counted(path, cap, info)


def _rgb_conversion(frame: np.ndarray) -> int:
  """The cv2.cvtColor code taking an OpenCV frame (BGR, BGRA or grayscale) to 3-channel RGB."""
  if frame.ndim == 2 or frame.shape[-1] == 1:
    return cv2.COLOR_GRAY2RGB
  if frame.shape[-1] == 4:
    return cv2.COLOR_BGRA2RGB
  return cv2.COLOR_BGR2RGB


def _decode_needed(cap: cv2.VideoCapture, path: str, needed: np.ndarray) -> np.ndarray:
  """Grabs frames 0..max(needed), retrieves those in `needed` (sorted, unique): RGB (U, H, W, 3).

  Each retrieved frame is colour-converted straight into its slot of the output array.
  """
  frames = None
  slots = {index: slot for slot, index in enumerate(needed.tolist())}
  for i in range(int(needed[-1]) + 1):
    if not cap.grab():
      if i == 0:
        raise VideoDecodeError(path, "no decodable frames")
      raise FrameIndexError(path, int(needed[-1]), i)
    if i not in slots:
      continue
    ok, frame = cap.retrieve()
    if not ok or frame is None:
      raise VideoDecodeError(path, f"frame {i} was grabbed but could not be retrieved")
    if frames is None:
      frames = np.empty((needed.size, *frame.shape[:2], 3), np.uint8)
    if frame.shape[:2] != frames.shape[1:3]:
      raise VideoDecodeError(path, f"frame size changes within the video: frame {needed[0]} is "
                             f"{frames.shape[1:3]}, frame {i} is {frame.shape[:2]}")
    cv2.cvtColor(frame, _rgb_conversion(frame), dst=frames[slots[i]])
  return frames


def _distinct_indices(path: str, indices: Sequence[int] | np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
  """(needed, inverse): the sorted distinct `indices` and each index's position among them."""
  indices = np.asarray(indices, dtype=np.int64).reshape(-1)
  if indices.size == 0:
    raise ValueError(f"{path}: no frame indices requested")
  if indices.min() < 0:
    raise ValueError(f"{path}: negative frame index {int(indices.min())}")
  needed, inverse = np.unique(indices, return_inverse=True)
  return needed, inverse.reshape(-1)


def _image_frames(path: str, image: np.ndarray, needed: np.ndarray) -> np.ndarray:
  """The image as frames (1, H, W, 3), checking that only frame 0 is `needed`."""
  if needed[-1] > 0:
    raise FrameIndexError(path, int(needed[-1]), 1)
  return image[None]


def read_distinct_frames(path: str, indices: Sequence[int] | np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
  """Decodes each distinct frame of `indices` once: (frames (U, H, W, 3), inverse (n,)).

  `frames[inverse[i]]` is frame `indices[i]`; U is the number of distinct indices (sorted), so
  repeats (wrap-around, clamping, several clips on a short video) are decoded, stored and later
  processed once.
  """
  needed, inverse = _distinct_indices(path, indices)
  if is_image(path):
    return _image_frames(path, read_image(path), needed), inverse
  with _capture(path) as cap:
    return _decode_needed(cap, path, needed), inverse


class FrameShortfalls:
  """Videos that decoded fewer frames than their container claims: path -> (claimed, decoded).

  `read_sampled_frames` records each one (it re-samples from the frames that decode); callers
  count them (`summary`) and put `warning(path)` in their output records. Thread-safe; per process.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._counts: dict[str, tuple[int, int]] = {}

  def record(self, path: str, claimed: int, decoded: int) -> None:
    """Records that `path` claimed `claimed` frames but `decoded` decoded."""
    with self._lock:
      self._counts[path] = (claimed, decoded)

  def get(self, path: str) -> tuple[int, int] | None:
    """(claimed, decoded) of a recorded video, else None."""
    with self._lock:
      return self._counts.get(path)

  def warning(self, path: str) -> str:
    """The warning for an output record of `path` ('' when it decoded fully or was not read)."""
    counts = self.get(path)
    if counts is None:
      return ""
    return (f"decoded {counts[1]} of the {counts[0]} frames its container lists "
            "(truncated or damaged file); sampled from those")

  def __len__(self) -> int:
    with self._lock:
      return len(self._counts)

  def summary(self) -> str:
    """'N videos decoded fewer frames than their container lists: PATH (decoded/claimed), ...'."""
    with self._lock:
      items = sorted(self._counts.items())
    listed = ", ".join(f"{p} ({d}/{c})" for p, (c, d) in items[:20])
    return (f"{len(items)} videos decoded fewer frames than their container lists"
            + (f": {listed}" if items else ""))


SHORTFALLS = FrameShortfalls()


def open_problem(path: str) -> str:
  """Why `path` cannot be opened as a video ('' when it can): the container is probed, no frame
  decoded (an image is decoded, its only frame). Cheap enough to check every split up front."""
  try:
    if is_image(path):
      read_image(path)
    else:
      with _capture(path) as cap:
        _metadata(cap)
  except VideoDecodeError as e:
    return e.reason
  return ""


def read_sampled_frames(path: str,
                        choose_indices: Callable[[VideoInfo], Sequence[int] | np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
  """Probes and decodes with one opening of the file: `read_distinct_frames(choose_indices(info))`.

  `choose_indices` picks the frame indices from the metadata (`probe`'s VideoInfo: frame count,
  average fps, size). When the container over-reports its frame count (decoding stops before a
  chosen index), a warning is logged and the indices are chosen again from a VideoInfo whose
  num_frames is the number of frames that decoded. An image is decoded once (1 frame, fps 0).
  Opening a file costs about 1 ms (like decoding eight 192x144 frames), which matters for short,
  small videos.
  """
  if is_image(path):
    image = read_image(path)
    needed, inverse = _distinct_indices(path, choose_indices(_image_info(image)))
    return _image_frames(path, image, needed), inverse
  with _capture(path) as cap:
    info = _metadata(cap)
    if info.num_frames > 0:
      needed, inverse = _distinct_indices(path, choose_indices(info))
      try:
        return _decode_needed(cap, path, needed), inverse
      except FrameIndexError as e:
        logging.warning("%s: metadata says %d frames but %d decode; re-sampling from those.",
                        path, info.num_frames, e.num_decodable)
        SHORTFALLS.record(path, info.num_frames, e.num_decodable)
        info = dataclasses.replace(info, num_frames=e.num_decodable)
    else:
      info = _counted(path, cap, info)
  return read_distinct_frames(path, choose_indices(info))


def read_frames(path: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
  """Decodes the frames at `indices` (any order, repeats allowed) as displayed RGB (n, H, W, 3)."""
  frames, inverse = read_distinct_frames(path, indices)
  if np.array_equal(inverse, np.arange(frames.shape[0])):
    return frames  # Sorted distinct indices: already in order, no copy.
  return frames[inverse]
