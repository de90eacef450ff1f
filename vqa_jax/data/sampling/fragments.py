"""FAST-VQA's fragments and FasterVQA's segments (paper §8): frame indices and patch grids.

Temporal: `temporal_indices` (FAST-VQA, `FragmentSampleFrames(clip_len, num_clips,
frame_interval)`; 'clamp' is SAMA's overflow) and `segment_indices` (FasterVQA, `t_frag` segments
of the whole video). Spatial: `sample_fragments` cuts a grid x grid lattice of patch x patch
mini-patches (`grid.py`), positions shared by the frames of each chunk of `aligned` frames; small
videos are upsampled first (`upsample_to_min_side`), with the grid computed from the upsampled
size. `clip_sampler.sample_clips` runs them for sampling.method 'fragments' and 'fragments_t'.
"""

import cv2
import numpy as np

from vqa_jax.data.sampling import grid as grid_lib

OVERFLOWS = ("wrap", "clamp")


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


def patch_corners(height: int, width: int, num_frames: int, grid: int, patch: int, aligned: int,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Mini-patch corners (tops, lefts), int64 (chunks, grid, grid) each, chunks = ceil(T / aligned).

  The one definition of where the fragments are cut, shared by the numpy sampler
  (`sample_fragments`) and the device cutter (`decoders/device_fragments.py`): cell origins from
  `grid_lib.grid_cells` of the (upsampled) frame size, plus one offset per cell and chunk of
  `aligned` frames, drawn from `rng` (all the tops, then all the lefts) or centred when None.
  """
  h_origins, h_bound = grid_lib.grid_cells(height, grid, patch)
  w_origins, w_bound = grid_lib.grid_cells(width, grid, patch)
  num_chunks = -(-num_frames // aligned)
  tops = h_origins[:, None] + grid_lib.cell_offsets(h_bound, (num_chunks, grid, grid), rng)
  lefts = w_origins[None, :] + grid_lib.cell_offsets(w_bound, (num_chunks, grid, grid), rng)
  return tops, lefts


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
  tops, lefts = patch_corners(height, width, num_frames, grid, patch, aligned, rng)
  num_chunks = tops.shape[0]
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

