"""FAST-VQA temporal and spatial ("fragment") sampling in pure numpy (paper §8).

Follows FAST-VQA's `FragmentSampleFrames` and `get_spatial_fragments`, with two of the
reference's faults fixed (paper §11 a, b):

* Evaluation is deterministic: with `rng=None` the temporal offset of each clip and the
  spatial offset of each grid cell are centred in their ranges. The reference draws them at
  random at test time too. With a `np.random.Generator` the reference's random draws are used.
* Small videos: when the short side is below `grid * patch`, the frames are upsampled and the
  grid is computed from the upsampled size. The reference keeps the original size for the grid
  and so takes every patch from the top-left corner of the upsampled frame.
"""

from collections.abc import Mapping
from typing import Any

from absl import logging
import cv2
import numpy as np

from vqa_jax.data import video_io


def temporal_indices(num_frames: int, clip_len: int, frame_interval: int, num_clips: int,
                     rng: np.random.Generator | None = None) -> np.ndarray:
  """Frame indices of `num_clips` clips of `clip_len` frames, `frame_interval` apart, flattened.

  The video is split into `num_clips` segments of length l = num_frames // num_clips starting
  at l*k. With span = clip_len * frame_interval, each clip starts at an offset in its segment:
  uniform in {0, ..., l - span - 1} when `rng` is given (the reference), the centred
  (l - span) // 2 when `rng` is None (deterministic evaluation: the fix), and 0 when l <= span.
  Indices are taken modulo num_frames, so short videos wrap around to frame 0.

  Args:
    num_frames: N, the number of frames of the video.
    clip_len: frames per clip.
    frame_interval: stride between the frames of a clip.
    num_clips: K, the number of clips (segments).
    rng: draws random offsets when given; centred offsets when None.

  Returns:
    int64 array of shape (num_clips * clip_len,), clip-major.
  """
  if min(num_frames, clip_len, frame_interval, num_clips) <= 0:
    raise ValueError(f"num_frames={num_frames}, clip_len={clip_len}, frame_interval="
                     f"{frame_interval} and num_clips={num_clips} must all be positive")
  segment = num_frames // num_clips
  span = clip_len * frame_interval
  if segment <= span:
    offsets = np.zeros(num_clips, dtype=np.int64)
  elif rng is None:
    offsets = np.full(num_clips, (segment - span) // 2, dtype=np.int64)
  else:
    offsets = rng.integers(0, segment - span, size=num_clips, dtype=np.int64)
  starts = segment * np.arange(num_clips, dtype=np.int64) + offsets
  indices = starts[:, None] + frame_interval * np.arange(clip_len, dtype=np.int64)[None, :]
  return (indices % num_frames).reshape(-1)


def grid_cells(size: int, grid: int, patch: int) -> tuple[np.ndarray, int]:
  """Cell origins along one axis and the exclusive bound of the per-cell patch offset.

  cell = size // grid; origins[i] = min(cell * i, size - patch); offsets are drawn from
  {0, ..., bound - 1} with bound = cell - patch if cell > patch else 0 (offset 0).
  """
  if size < patch:
    raise ValueError(f"size {size} is smaller than the patch size {patch}")
  cell = size // grid
  origins = np.minimum(cell * np.arange(grid, dtype=np.int64), size - patch)
  return origins, max(cell - patch, 0)


def upsample_to_min_side(frames: np.ndarray, min_side: int) -> np.ndarray:
  """Bilinearly upsamples (T, H, W, C) frames so the short side is `min_side`; else returns them.

  The long side becomes floor(long * min_side / short), as in the reference's
  floor(H / ratio). cv2.resize works on one image at a time: stacking frames into channels
  is capped at 128 channels in OpenCV 5 and measured slower than this per-frame call.
  """
  _, height, width, _ = frames.shape
  short = min(height, width)
  if short >= min_side:
    return frames
  size = (width * min_side // short, height * min_side // short)  # cv2 takes (width, height).
  return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])


def _cell_offsets(bound: int, shape: tuple[int, ...],
                  rng: np.random.Generator | None) -> np.ndarray:
  """Per-cell offsets in {0, ..., bound - 1}: random with `rng`, else centred; 0 if bound is 0."""
  if bound == 0:
    return np.zeros(shape, dtype=np.int64)
  if rng is None:
    return np.full(shape, int(0.5 * bound), dtype=np.int64)
  return rng.integers(0, bound, size=shape, dtype=np.int64)


def sample_fragments(frames: np.ndarray, grid: int, patch: int, aligned: int,
                     rng: np.random.Generator | None = None) -> np.ndarray:
  """Grid mini-patch sampling: (T, H, W, 3) frames to (T, grid*patch, grid*patch, 3) fragments.

  Frames whose short side is below grid*patch are upsampled first and the grid is computed from
  the upsampled size (the reference uses the original size: fixed here). Each grid cell (i, j)
  gets one (dh, dw) offset per temporal chunk of `aligned` frames, shared by all frames of the
  chunk; output block [patch*i : patch*(i+1), patch*j : patch*(j+1)] of frame t is
  input[h_i + dh : h_i + dh + patch, w_j + dw : w_j + dw + patch].

  Vectorised over frames and pixels: each of the chunks * grid**2 slice copies moves one patch
  of all the frames of a chunk. On 128 frames of 540x960 this measured 10-15x faster than one
  fancy-indexed gather, which needs an index per output pixel.

  Args:
    frames: uint8 array (T, H, W, C).
    grid: number of cells per side.
    patch: side of a mini-patch in pixels.
    aligned: frames per temporal chunk sharing patch positions.
    rng: random offsets (drawn h then w, each (chunks, grid, grid)) when given; centred
      offsets int(0.5 * bound) when None.

  Returns:
    Array of the dtype of `frames`, shape (T, grid*patch, grid*patch, C).
  """
  if frames.ndim != 4:
    raise ValueError(f"frames must be (T, H, W, C), got shape {frames.shape}")
  frames = upsample_to_min_side(frames, grid * patch)
  num_frames, height, width, channels = frames.shape
  h_origins, h_bound = grid_cells(height, grid, patch)
  w_origins, w_bound = grid_cells(width, grid, patch)
  num_chunks = -(-num_frames // aligned)
  # Patch corners indexed [chunk, i, j].
  tops = h_origins[:, None] + _cell_offsets(h_bound, (num_chunks, grid, grid), rng)
  lefts = w_origins[None, :] + _cell_offsets(w_bound, (num_chunks, grid, grid), rng)
  out = np.empty((num_frames, grid * patch, grid * patch, channels), frames.dtype)
  for chunk, i, j in np.ndindex(num_chunks, grid, grid):
    top, left = tops[chunk, i, j], lefts[chunk, i, j]
    time_slice = slice(chunk * aligned, (chunk + 1) * aligned)
    out[time_slice, patch * i:patch * (i + 1), patch * j:patch * (j + 1)] = (
        frames[time_slice, top:top + patch, left:left + patch])
  return out


def sample_clips(path: str, sampling: Mapping[str, Any], num_clips: int,
                 rng: np.random.Generator | None = None) -> np.ndarray:
  """Decodes and samples `num_clips` fragment clips: uint8 (num_clips, clip_len, S, S, 3).

  `sampling` holds `clip_len`, `frame_interval`, `grid` and `patch` (S = grid * patch). Patch
  positions are aligned within each clip and drawn independently per clip. When the container
  over-reports the frame count (OpenCV reads it from metadata), the clips are re-sampled from
  the frames that actually decode.
  """
  clip_len, grid, patch = sampling["clip_len"], sampling["grid"], sampling["patch"]
  num_frames = video_io.probe(path).num_frames
  try:
    frames = _read_clips(path, num_frames, sampling, num_clips, rng)
  except video_io.FrameIndexError as e:
    logging.warning("%s: metadata says %d frames but %d decode; re-sampling from those.",
                    path, num_frames, e.num_decodable)
    frames = _read_clips(path, e.num_decodable, sampling, num_clips, rng)
  fragments = sample_fragments(frames, grid, patch, aligned=clip_len, rng=rng)
  return fragments.reshape(num_clips, clip_len, *fragments.shape[1:])


def _read_clips(path: str, num_frames: int, sampling: Mapping[str, Any], num_clips: int,
                rng: np.random.Generator | None) -> np.ndarray:
  """Decodes the frames of `num_clips` sampled clips, clip-major: (K * clip_len, H, W, 3)."""
  indices = temporal_indices(num_frames, sampling["clip_len"], sampling["frame_interval"],
                             num_clips, rng)
  return video_io.read_frames(path, indices)
