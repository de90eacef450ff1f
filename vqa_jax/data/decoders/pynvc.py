"""NVDEC through PyNvVideoCodec: start-up checks and the retained per-thread decoder.

`check_available()` fails at start, naming what is missing: an NVIDIA driver with NVDEC
(libnvcuvid), a jax GPU device, or the PyNvVideoCodec package (`pip install vqa-jax[nvdec]`).
`PyNvDecoder` is one thread's decoder: a `SimpleDecoder` created once with `max_width` /
`max_height` (1920 x 1920 by default: landscape and portrait 1080p) and
`reconfigure_decoder(path)` for each later video (a fresh decoder per clip costs 0.15-0.3 s to
open; BENCHMARKS.md). The frame count, frame rate, size and rotation come from
OpenCV's probe (about 1 ms), so both decoders choose the same indices; frames come back as native
NV12 on the GPU (DLPack) and are converted with `colour` (OpenCV's matrix and range), or with
NVDEC's own RGB conversion when `colour_conversion='nvdec'`.
"""

import ctypes
import importlib

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.data import video_io
from vqa_jax.data.decoders import colour
from vqa_jax.data.decoders import frame_decoder

INSTALL_HINT = "pip install vqa-jax[nvdec]"
_NVDEC_LIBRARY = "libnvcuvid.so.1"
COLOUR_CONVERSIONS = ("opencv", "nvdec")


def import_pynvvideocodec():
  """The PyNvVideoCodec module, or ImportError naming the package and the extra that brings it."""
  try:
    return importlib.import_module("PyNvVideoCodec")
  except ImportError as e:
    raise ImportError(f"data.decoder 'nvdec'/'hybrid' needs the PyNvVideoCodec package, which is "
                      f"not installed ({e}): {INSTALL_HINT}") from e


def check_available() -> None:
  """Raises RuntimeError/ImportError unless NVDEC can decode here (driver, GPU, package)."""
  try:
    ctypes.CDLL(_NVDEC_LIBRARY)
  except OSError as e:
    raise RuntimeError(f"data.decoder 'nvdec'/'hybrid' needs an NVIDIA GPU driver with NVDEC: "
                       f"{_NVDEC_LIBRARY} cannot be loaded ({e})") from e
  if not any(d.platform == "gpu" for d in jax.devices()):
    raise RuntimeError(f"data.decoder 'nvdec'/'hybrid' needs jax on an NVIDIA GPU; jax sees "
                       f"{[d.platform for d in jax.devices()]} (install jax[cuda13])")
  import_pynvvideocodec()


def _stream_conversion(metadata) -> colour.Conversion:
  """The stream's colour conversion from its metadata (BT.601 studio range where it names none)."""
  matrix = getattr(metadata, "matrix_coefficients", getattr(metadata, "color_space", 2))
  full = getattr(metadata, "video_full_range_flag", getattr(metadata, "color_range", 0))
  as_int = lambda v, default: int(v) if isinstance(v, (int, np.integer)) else default
  return colour.conversion_for(as_int(matrix, 2), bool(as_int(full, 0)))


class PyNvDecoder:
  """One thread's retained NVDEC decoder (frame_decoder.FrameDecoder), reconfigured per video."""

  def __init__(self, max_width: int = 1920, max_height: int = 1920, gpu_id: int = 0,
               colour_conversion: str = "opencv"):
    if colour_conversion not in COLOUR_CONVERSIONS:
      raise ValueError(f"colour_conversion must be one of {COLOUR_CONVERSIONS}, "
                       f"got {colour_conversion!r}")
    self._nvc = import_pynvvideocodec()
    self.max_width, self.max_height, self.gpu_id = max_width, max_height, gpu_id
    self.colour_conversion = colour_conversion
    self._decoder = None
    self._errors = tuple(getattr(self._nvc, n) for n in dir(self._nvc)
                         if n.startswith("PyNvVCException"))

  def _open(self, path: str):
    """The decoder pointed at `path`: created on first use, reconfigured after."""
    if self._decoder is None:
      color = (self._nvc.OutputColorType.RGB if self.colour_conversion == "nvdec"
               else self._nvc.OutputColorType.NATIVE)
      self._decoder = self._nvc.SimpleDecoder(path, gpu_id=self.gpu_id, use_device_memory=True,
                                              max_width=self.max_width,
                                              max_height=self.max_height,
                                              output_color_type=color)
    else:
      self._decoder.reconfigure_decoder(path)
    return self._decoder

  def read_sampled_frames(self, path: str, choose_indices: frame_decoder.ChooseIndices
                          ) -> tuple[jax.Array, np.ndarray]:
    """NVDEC's decode of the chosen distinct frames, RGB on the GPU; NvdecUnsupported otherwise."""
    info = video_io.probe(path)
    frame_decoder.check_size(path, info, self.max_width, self.max_height)
    try:
      decoder = self._open(path)
      if len(decoder) < info.num_frames:
        raise frame_decoder.NvdecUnsupported(path, f"NVDEC counts {len(decoder)} frames, OpenCV "
                                             f"{info.num_frames}")
      needed, inverse = np.unique(np.asarray(choose_indices(info), np.int64), return_inverse=True)
      frames = decoder.get_batch_frames_by_index(needed.tolist())
      conversion = _stream_conversion(decoder.get_stream_metadata())
    except self._errors + (IndexError, ValueError) as e:
      self._decoder = None  # rebuilt for the next video
      raise frame_decoder.NvdecUnsupported(path, f"NVDEC: {type(e).__name__}: {e}") from e
    if len(frames) != needed.size:
      raise frame_decoder.NvdecUnsupported(path, f"NVDEC returned {len(frames)} of {needed.size} "
                                           "frames")
    stacked = jnp.stack([jnp.from_dlpack(f) for f in frames])
    # The copy is done before the decoder may reuse its surfaces for the next video.
    stacked = jax.block_until_ready(stacked)
    if self.colour_conversion == "opencv":
      stacked = colour.nv12_to_rgb(stacked, conversion)
    if stacked.shape[1:] != (info.height, info.width, 3):
      raise frame_decoder.NvdecUnsupported(path, f"NVDEC frames {stacked.shape[1:]}, OpenCV "
                                           f"{info.height}x{info.width}")
    return stacked, inverse.reshape(-1)
