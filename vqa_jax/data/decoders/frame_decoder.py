"""The device-frame decoder interface, its errors, and the fake NVDEC decoder of the CPU tests.

A `FrameDecoder` is retained by one thread and reconfigured per video: `read_sampled_frames(path,
choose_indices)` mirrors `video_io.read_sampled_frames` (the indices are chosen from the stream's
`VideoInfo`, each distinct frame is decoded once) but returns the frames as a device array.
`NvdecUnsupported` says the video is not for this decoder (codec, container, size, rotation, a
frame-count shortfall): the loader then decodes it on the CPU, counted and logged
(`nvdec_pipeline`). `OpenCVDeviceDecoder` is the fake: OpenCV's frames handed over as device arrays,
with NVDEC's size limit, so the pool, the hybrid split, the ordering and the fallback are tested
without a GPU.
"""

from collections.abc import Callable, Sequence
import threading
from typing import Protocol

import jax
import numpy as np

from vqa_jax.data import video_io

ChooseIndices = Callable[[video_io.VideoInfo], Sequence[int] | np.ndarray]


class NvdecUnsupported(RuntimeError):
  """A video this decoder cannot take (codec, container, size, ...): decode it on the CPU."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"{video_io.printable_path(path)}: {reason}")
    self.path, self.reason = path, reason


class FrameDecoder(Protocol):
  """A decoder held by one thread; `read_sampled_frames` reconfigures it for each video."""

  def read_sampled_frames(self, path: str, choose_indices: ChooseIndices
                          ) -> tuple[jax.Array, np.ndarray]:
    """The distinct chosen frames (U, H, W, 3) uint8 RGB on the device; the (T,) inverse index."""


def check_size(path: str, info: video_io.VideoInfo, max_width: int, max_height: int) -> None:
  """Raises NvdecUnsupported for a rotated video or one larger than the decoder was created for."""
  if info.rotation:
    raise NvdecUnsupported(path, f"display rotation {info.rotation} degrees (applied on the CPU)")
  if info.width > max_width or info.height > max_height:
    raise NvdecUnsupported(path, f"{info.width}x{info.height} exceeds the decoder's "
                           f"{max_width}x{max_height}")


class OpenCVDeviceDecoder:
  """The fake NVDEC decoder: OpenCV decodes, the frames go to the device; counts its videos.

  `videos` counts this decoder's reconfigurations, `thread` is the thread that made it (the only
  one that may use it); `unsupported` paths (and videos over max_width x max_height) raise
  NvdecUnsupported as NVDEC does for a codec or size it cannot take.
  """

  def __init__(self, max_width: int = 1920, max_height: int = 1920,
               unsupported: Sequence[str] = ()):
    self.max_width, self.max_height = max_width, max_height
    self.unsupported = frozenset(unsupported)
    self.videos = 0
    self.thread = threading.get_ident()

  def read_sampled_frames(self, path: str, choose_indices: ChooseIndices
                          ) -> tuple[jax.Array, np.ndarray]:
    """OpenCV's `read_sampled_frames` on the device (NvdecUnsupported for the listed paths)."""
    if threading.get_ident() != self.thread:
      raise RuntimeError("a retained decoder is used by the thread that made it only")
    self.videos += 1
    if path in self.unsupported:
      raise NvdecUnsupported(path, "codec not supported by NVDEC (fake)")

    def checked(info: video_io.VideoInfo):
      check_size(path, info, self.max_width, self.max_height)
      return choose_indices(info)

    frames, inverse = video_io.read_sampled_frames(path, checked)
    return jax.device_put(frames), inverse
