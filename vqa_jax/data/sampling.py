"""Clip sampling in pure numpy: FAST-VQA fragments, FasterVQA's segments, SAMA (paper §8, §6.2).

`sampling.method` chooses the sampler (`sample_clips`):

* 'fragments' (FAST-VQA, `FragmentSampleFrames(clip_len, num_clips, frame_interval)` +
  `get_spatial_fragments`): clip k is `clip_len` frames at `frame_interval` in the k-th of
  `num_clips` equal segments, wrapping around short videos; a grid x grid lattice of patch x patch
  mini-patches, positions shared by the frames of each chunk of `aligned` frames (0: the clip).
* 'fragments_t' (FasterVQA, `FragmentSampleFrames(clip_len // t_frag, t_frag, frame_interval,
  num_clips)`): each clip is `t_frag` segments of the whole video, `clip_len // t_frag` frames at
  `frame_interval` from each; the clips are independent redraws (identical when centred). Same
  spatial sampler, typically with `aligned` < clip_len.
* 'sama' (SAMA, `vqa_jax/data/sama.py`): FAST-VQA's segments with indices past the end clamped to
  the last frame, and per-frame-pair scales.
* 'frames_1fps' (SimpleVQA, `vqa_jax/data/frames_1fps.py`): `clip_len` whole frames at one per
  second, short side resized to `short_side`, a `crop` square per frame.

Faults of the reference fixed here (paper §11 a, b):

* Evaluation is deterministic by default: with `rng=None` temporal and spatial offsets are
  centred. The reference draws them at random at test time too (FAST-VQA, FasterVQA); with
  `sampling.eval_offsets = 'random'` evaluation draws them from `eval_rng` (seeded by
  `sampling.eval_seed` and the video's index), which reproduces that protocol reproducibly.
* Small videos: when the short side is below `grid * patch`, the frames are upsampled and the
  grid is computed from the upsampled size. The reference keeps the original size for the grid
  and so takes every patch from the top-left corner of the upsampled frame.

Each distinct frame is decoded, augmented and upsampled once, however often the sampled indices
repeat it (wrap-around, clamping, several clips of a short video).
"""

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from vqa_jax.config import choices
from vqa_jax.config import validation
from vqa_jax.config.config_base import sampling_fields
from vqa_jax.data import augment as augment_lib
from vqa_jax.data import frames_1fps
from vqa_jax.data import grid as grid_lib
from vqa_jax.data import sama
from vqa_jax.data import sama_iqa
from vqa_jax.data import video_io

OVERFLOWS = ("wrap", "clamp")

# Re-exported: the grid geometry lives in grid.py, shared with SAMA.
grid_cells = grid_lib.grid_cells


def temporal_indices(num_frames: int, clip_len: int, frame_interval: int, num_clips: int,
                     rng: np.random.Generator | None = None, overflow: str = "wrap") -> np.ndarray:
  """Frame indices of `num_clips` clips of `clip_len` frames, `frame_interval` apart, flattened.

  The video is split into `num_clips` segments of length l = num_frames // num_clips starting
  at l*k. With span = clip_len * frame_interval, each clip starts at an offset in its segment:
  uniform in {0, ..., l - span - 1} when `rng` is given (the reference), the centred
  (l - span) // 2 when `rng` is None (deterministic evaluation: the fix), and 0 when l <= span.
  With overflow='wrap' (FAST-VQA) indices are taken modulo num_frames, so short videos wrap
  around to frame 0; with 'clamp' (SAMA) indices past the end become the last frame.

  Args:
    num_frames: N, the number of frames of the video.
    clip_len: frames per clip.
    frame_interval: stride between the frames of a clip.
    num_clips: K, the number of clips (segments).
    rng: draws random offsets when given; centred offsets when None.
    overflow: 'wrap' or 'clamp', what happens to indices >= num_frames.

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
  if overflow == "wrap":
    return (indices % num_frames).reshape(-1)
  if overflow == "clamp":
    return np.minimum(indices, num_frames - 1).reshape(-1)
  raise ValueError(f"overflow must be one of {OVERFLOWS}, got {overflow!r}")


def segment_indices(num_frames: int, clip_len: int, t_frag: int, frame_interval: int,
                    num_clips: int, rng: np.random.Generator | None = None) -> np.ndarray:
  """FasterVQA's temporal fragments: `num_clips` clips of `t_frag` segments, flattened.

  Each clip is `temporal_indices(num_frames, clip_len // t_frag, frame_interval, t_frag, rng)`:
  the video is split into t_frag segments of num_frames // t_frag frames and each gives
  clip_len // t_frag frames at `frame_interval` from an offset in the segment (random with `rng`,
  else centred), wrapping around. Upstream (`FragmentSampleFrames(fsize_t, fragments_t,
  frame_interval, num_clips)`) redraws the offsets for each clip.
  """
  if t_frag <= 0 or clip_len % t_frag:
    raise ValueError(f"t_frag={t_frag} must be positive and divide clip_len={clip_len}")
  return np.concatenate([temporal_indices(num_frames, clip_len // t_frag, frame_interval, t_frag,
                                          rng) for _ in range(num_clips)])


def upsample_to_min_side(frames: np.ndarray, min_side: int) -> np.ndarray:
  """Bilinearly upsamples (T, H, W, C) frames so the short side is `min_side`; else returns them.

  The long side becomes floor(long * min_side / short), as in the reference's
  floor(H / ratio). cv2.resize works on one image at a time (stacking frames into channels
  is capped at 128 channels in OpenCV 5 and measured slower); each frame is resized straight
  into its slot of the output array.
  """
  num_frames, height, width, channels = frames.shape
  short = min(height, width)
  if short >= min_side:
    return frames
  new_height, new_width = height * min_side // short, width * min_side // short
  out = np.empty((num_frames, new_height, new_width, channels), frames.dtype)
  for frame, resized in zip(frames, out):
    # cv2 takes (width, height); a one-channel image is (H, W) to it.
    cv2.resize(frame, (new_width, new_height), dst=resized[..., 0] if channels == 1 else resized,
               interpolation=cv2.INTER_LINEAR)
  return out


def sample_fragments(frames: np.ndarray, grid: int, patch: int, aligned: int,
                     rng: np.random.Generator | None = None,
                     frame_index: np.ndarray | None = None) -> np.ndarray:
  """Grid mini-patch sampling: (T, H, W, 3) frames to (T, grid*patch, grid*patch, 3) fragments.

  Frames whose short side is below grid*patch are upsampled first and the grid is computed from
  the upsampled size (the reference uses the original size: fixed here). Each grid cell (i, j)
  gets one (dh, dw) offset per temporal chunk of `aligned` frames, shared by all frames of the
  chunk; output block [patch*i : patch*(i+1), patch*j : patch*(j+1)] of frame t is
  input[h_i + dh : h_i + dh + patch, w_j + dw : w_j + dw + patch].

  Vectorised over frames and pixels: each of the chunks * grid**2 slice copies moves one patch
  of all the frames of a chunk. On 128 frames of 540x960 this measured 10-15x faster than one
  fancy-indexed gather, which needs an index per output pixel. Chunks that share their patch
  positions (centred offsets, or a single chunk) are cut together; the patches of each distinct
  frame are cut once (from a view when the frames are consecutive) and repeats are copied; only
  the frames the output uses are upsampled, each once.

  Args:
    frames: uint8 array (U, H, W, C).
    grid: number of cells per side.
    patch: side of a mini-patch in pixels.
    aligned: frames per temporal chunk sharing patch positions.
    rng: random offsets (drawn h then w, each (chunks, grid, grid)) when given; centred
      offsets int(0.5 * bound) when None.
    frame_index: output frame t is frames[frame_index[t]] (T entries); None for the identity.
      Lets callers pass each distinct frame once, so it is upsampled once.

  Returns:
    Array of the dtype of `frames`, shape (T, grid*patch, grid*patch, C).
  """
  if frames.ndim != 4:
    raise ValueError(f"frames must be (T, H, W, C), got shape {frames.shape}")
  if frame_index is None:
    frame_index = np.arange(frames.shape[0])
  frame_index = np.asarray(frame_index, dtype=np.int64).reshape(-1)
  if min(frames.shape[1:3]) < grid * patch:
    used, frame_index = np.unique(frame_index, return_inverse=True)
    frames = upsample_to_min_side(frames if used.size == frames.shape[0] else frames[used],
                                  grid * patch)
  num_frames = frame_index.size
  _, height, width, channels = frames.shape
  h_origins, h_bound = grid_lib.grid_cells(height, grid, patch)
  w_origins, w_bound = grid_lib.grid_cells(width, grid, patch)
  num_chunks = -(-num_frames // aligned)
  # Patch corners indexed [chunk, i, j].
  tops = h_origins[:, None] + grid_lib.cell_offsets(h_bound, (num_chunks, grid, grid), rng)
  lefts = w_origins[None, :] + grid_lib.cell_offsets(w_bound, (num_chunks, grid, grid), rng)
  chunk_len = aligned
  if num_chunks > 1 and np.all(tops == tops[:1]) and np.all(lefts == lefts[:1]):
    chunk_len = num_frames  # Every chunk has the same positions: cut them all at once.
  out = np.empty((num_frames, grid * patch, grid * patch, channels), frames.dtype)
  for chunk in range(-(-num_frames // chunk_len)):
    time_slice = slice(chunk * chunk_len, (chunk + 1) * chunk_len)
    _cut_each_frame_once(frames, frame_index[time_slice], tops[chunk], lefts[chunk], patch,
                         out[time_slice])
  return out


def _cut_each_frame_once(frames: np.ndarray, frame_index: np.ndarray, tops: np.ndarray,
                         lefts: np.ndarray, patch: int, out: np.ndarray) -> None:
  """Writes the patch grid of frames[frame_index] into out, cutting each distinct frame once."""
  used, inverse = np.unique(frame_index, return_inverse=True)
  # Consecutive frames are a view (one copy per patch); others a gather per patch.
  source = slice(used[0], used[-1] + 1) if used[-1] - used[0] + 1 == used.size else used
  if np.array_equal(used, frame_index):
    grid_lib.cut_patches(frames, source, tops, lefts, patch, out, slice(None))
    return
  distinct = np.empty((used.size, *out.shape[1:]), out.dtype)
  grid_lib.cut_patches(frames, source, tops, lefts, patch, distinct, slice(None))
  np.take(distinct, inverse, axis=0, out=out, mode="clip")  # inverse is in range.


def clip_indices(num_frames: int, sampling: Mapping[str, Any], num_clips: int,
                 rng: np.random.Generator | None = None) -> np.ndarray:
  """The frame indices of `num_clips` clips of the configured method, clip-major, flattened."""
  sampling = sampling_fields(sampling)
  method = sampling["method"]
  if method == choices.FRAMES_1FPS:
    raise ValueError("'frames_1fps' indices depend on the frame rate: frames_1fps.frame_indices")
  clip_len, interval = sampling["clip_len"], sampling["frame_interval"]
  if method == "fragments_t":
    return segment_indices(num_frames, clip_len, sampling["t_frag"], interval, num_clips, rng)
  overflow = "clamp" if method == "sama" else "wrap"
  return temporal_indices(num_frames, clip_len, interval, num_clips, rng, overflow)


def eval_rng(sampling: Mapping[str, Any], index: int) -> np.random.Generator | None:
  """The evaluation generator of video `index`: None (centred) unless eval_offsets is 'random'."""
  sampling = sampling_fields(sampling)
  if sampling["eval_offsets"] == "centred":
    return None
  seed = sampling["eval_seed"]
  return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def sample_clips(path: str, sampling: Mapping[str, Any], num_clips: int,
                 rng: np.random.Generator | None = None, augment: str = "none") -> np.ndarray:
  """Decodes and samples `num_clips` clips: uint8 (num_clips, clip_len, S, S, 3), S = grid * patch.

  `sampling` holds `clip_len`, `frame_interval`, `grid`, `patch` and optionally `method`,
  `aligned`, `t_frag`, `sama_mask` (see the module docstring; a field left out takes base_config's
  value, `config_base.sampling_fields`). With `rng`
  the offsets are random (training, or evaluation with eval_offsets='random'); without, centred.
  `augment` ('none' or 'autoaugment', needs `rng`) transforms the decoded clip before the
  fragments are cut, one draw per call applied to every frame (`augment.augment_clip`).
  When the container over-reports the frame count (OpenCV reads it from metadata), the clips are
  re-sampled from the frames that actually decode.
  """
  sampling = sampling_fields(sampling)
  validation.check_sampling(sampling)
  method = sampling["method"]
  if method == choices.FRAMES_1FPS:  # SimpleVQA: whole frames at 1 fps (data/frames_1fps.py)
    return frames_1fps.sample_clips(path, sampling, num_clips, rng, augment)
  clip_len, grid, patch = sampling["clip_len"], sampling["grid"], sampling["patch"]
  frames, frame_index = video_io.read_sampled_frames(
      path, lambda info: clip_indices(info.num_frames, sampling, num_clips, rng))
  if augment != "none":
    if rng is None:
      raise ValueError(f"augment={augment!r} needs a random generator (training only)")
    frames = augment_lib.augment_clip(frames, rng, augment)
  if method == "sama":
    fragments = sama.sample_fragments(frames, frame_index, grid, patch, clip_len, rng,
                                      sampling["sama_mask"])
  elif method == "sama_iqa":
    fragments = np.stack([sama_iqa.sample_fragments(frames[i], grid, patch, rng)
                          for i in frame_index])
  else:
    aligned = sampling["aligned"] or clip_len
    fragments = sample_fragments(frames, grid, patch, aligned, rng, frame_index)
  return fragments.reshape(num_clips, clip_len, *fragments.shape[1:])
