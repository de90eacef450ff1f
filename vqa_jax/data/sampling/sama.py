"""SAMA's scaling-and-masking fragment sampler (paper §6.2, upstream `get_spatial_sama_fragments`).

For each clip of `clip_len` frames, frame pair k (frames 2k, 2k + 1) is bilinearly resized by
scale s_k, s = linspace(1, 1 / ratio, clip_len // 2) with ratio = min(H, W) / side and
side = grid * patch (upstream: 16 scales for 32 frames), and a grid x grid lattice of patch x patch
mini-patches is cut from the resized pair, with the grid computed from the resized size. Scale 1 is
native resolution, the last scale makes the short side `side`. When ratio < 1 the frames are first
upsampled to (round(H / ratio), round(W / ratio)) and every scale is 1.

The offset of cell (i, j) inside its cell is int(u_ij * (cell - patch)), with one fraction u per
cell and clip shared by all the scales of the clip: u ~ U[0, 1) with an rng (training), u = 0.5
without (test: centred, as upstream).

Masking (`mask`, upstream's 'sama-spm' / 'sama-swm' variants; upstream's default 'sama' has none,
and its stype whitelist makes the masked variants unreachable, paper §6.2): pixels where the mask
is 1 take the native-resolution (scale 1) fragments of the clip instead of the scaled ones;
'patch' is a checkerboard of 4x4-pixel squares, 'window' a checkerboard of patch x patch windows.
Upstream takes the native-resolution offsets of every clip from clip 0; this port uses each
clip's own (identical at test, where u = 0.5, and in training, where there is one clip).

Differences from upstream: frames stay uint8 (upstream keeps float after resizing, so values differ
by rounding, at most 1 level with OpenCV's fixed-point bilinear), and resizing uses OpenCV's
INTER_LINEAR, which like F.interpolate(mode='bilinear', align_corners=False) does not antialias.
"""

import cv2
import numpy as np

from vqa_jax.config.choices import SAMA_MASKS
from vqa_jax.data.sampling import grid as grid_lib


def upsampled_size(height: int, width: int, side: int) -> tuple[int, int] | None:
  """(round(H / ratio), round(W / ratio)) when ratio = min(H, W) / side < 1, else None."""
  ratio = min(height / side, width / side)
  if ratio >= 1:
    return None
  return round(height / ratio), round(width / ratio)


def pair_scales(height: int, width: int, side: int, num_pairs: int) -> np.ndarray:
  """The scale of each frame pair of a clip: linspace(1, 1 / ratio, num_pairs), or ones if ratio < 1."""
  ratio = min(height / side, width / side)
  if ratio < 1:
    return np.ones(num_pairs)
  return np.linspace(1.0, 1.0 / ratio, num_pairs)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
  """(round(H * s), round(W * s)), Python's rounding as upstream."""
  return round(float(height * scale)), round(float(width * scale))


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear resize of (n, H, W, C) frames to size (h, w); the frames themselves if unchanged."""
  if frames.shape[1:3] == size:
    return frames
  return np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
                   for f in frames])


def _patch_corners(height: int, width: int, grid: int, patch: int, fraction_h: np.ndarray,
                   fraction_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(grid, grid) patch corners (tops, lefts) of a height x width frame for the cell fractions."""
  h_origins, h_bound = grid_lib.grid_cells(height, grid, patch)
  w_origins, w_bound = grid_lib.grid_cells(width, grid, patch)
  tops = h_origins[:, None] + grid_lib.relative_offsets(fraction_h, h_bound)
  lefts = w_origins[None, :] + grid_lib.relative_offsets(fraction_w, w_bound)
  return tops, lefts


def mask_pattern(mask: str, side: int, patch: int) -> np.ndarray | None:
  """(side, side, 1) bool: where the native-resolution fragments replace the scaled ones."""
  if mask == "none":
    return None
  square = {"patch": 4, "window": patch}[mask]
  cells = np.arange(side) // square
  return ((cells[:, None] + cells[None, :]) % 2 == 0)[:, :, None]


def sample_fragments(frames: np.ndarray, frame_index: np.ndarray, grid: int, patch: int,
                     clip_len: int, rng: np.random.Generator | None = None,
                     mask: str = "none") -> np.ndarray:
  """SAMA fragments of the clips frames[frame_index]: (T, grid*patch, grid*patch, C).

  Args:
    frames: uint8 (U, H, W, C), the distinct decoded frames.
    frame_index: (T,) index into `frames` of each output frame; T is a multiple of `clip_len`.
    grid: cells per side.
    patch: mini-patch side in pixels.
    clip_len: frames per clip (even: the scales go by frame pairs).
    rng: draws the cell fractions u (h then w, each (clips, grid, grid)); None for u = 0.5.
    mask: 'none', 'patch' or 'window' (see the module docstring).
  """
  if mask not in SAMA_MASKS:
    raise ValueError(f"SAMA mask must be one of {SAMA_MASKS}, got {mask!r}")
  frame_index = np.asarray(frame_index, dtype=np.int64)
  num_frames = frame_index.size
  if clip_len % 2 or num_frames % clip_len:
    raise ValueError(f"SAMA needs an even clip_len dividing the frame count, got clip_len="
                     f"{clip_len} for {num_frames} frames")
  side = grid * patch
  size = upsampled_size(frames.shape[1], frames.shape[2], side)
  if size is not None:
    frames = _resize(frames, size)
  height, width = frames.shape[1:3]
  num_clips, num_pairs = num_frames // clip_len, clip_len // 2
  scales = pair_scales(height, width, side, num_pairs)
  shape = (num_clips, grid, grid)
  if rng is None:
    fraction_h, fraction_w = np.full(shape, 0.5), np.full(shape, 0.5)
  else:
    fraction_h, fraction_w = rng.random(shape), rng.random(shape)

  out = np.empty((num_frames, side, side, frames.shape[3]), frames.dtype)
  for pair in range(num_frames // 2):
    clip = pair // num_pairs
    pair_size = scaled_size(height, width, scales[pair % num_pairs])
    resized = _resize(frames[frame_index[2 * pair:2 * pair + 2]], pair_size)
    tops, lefts = _patch_corners(*pair_size, grid, patch, fraction_h[clip], fraction_w[clip])
    grid_lib.cut_patches(resized, np.arange(2), tops, lefts, patch, out,
                         slice(2 * pair, 2 * pair + 2))

  pattern = mask_pattern(mask, side, patch)
  if pattern is None:
    return out
  native = np.empty_like(out)
  for clip in range(num_clips):
    tops, lefts = _patch_corners(height, width, grid, patch, fraction_h[clip], fraction_w[clip])
    clip_frames = slice(clip * clip_len, (clip + 1) * clip_len)
    grid_lib.cut_patches(frames, frame_index[clip_frames], tops, lefts, patch, native, clip_frames)
  return np.where(pattern, native, out)
