"""Grid geometry shared by the fragment samplers (FAST-VQA, FasterVQA and SAMA; paper §8.3, §6.2).

A frame of size (H, W) is cut into grid x grid cells of (H // grid, W // grid) pixels; cell i starts
at min(cell * i, size - patch), and a patch x patch mini-patch is taken at an offset inside its cell.
"""

import numpy as np


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


def cell_offsets(bound: int, shape: tuple[int, ...],
                 rng: np.random.Generator | None) -> np.ndarray:
  """Per-cell offsets in {0, ..., bound - 1}: random with `rng`, else centred; 0 if bound is 0."""
  if bound == 0:
    return np.zeros(shape, dtype=np.int64)
  if rng is None:
    return np.full(shape, int(0.5 * bound), dtype=np.int64)
  return rng.integers(0, bound, size=shape, dtype=np.int64)


def relative_offsets(fractions: np.ndarray, bound: int) -> np.ndarray:
  """SAMA's offsets int(u * bound) for fractions u in [0, 1), truncated; 0 when bound <= 0."""
  return (fractions * max(bound, 0)).astype(np.int64)


def cut_patches(frames: np.ndarray, frame_index: np.ndarray, tops: np.ndarray, lefts: np.ndarray,
                patch: int, out: np.ndarray, out_frames: slice) -> None:
  """Writes the grid of patches of frames[frame_index] into out[out_frames].

  `tops` and `lefts` are (grid, grid) patch corners shared by those frames. Indexing the source by
  frame_index with slices for the pixels copies only the patches, not whole frames.
  """
  grid = tops.shape[0]
  for i, j in np.ndindex(grid, grid):
    top, left = tops[i, j], lefts[i, j]
    out[out_frames, patch * i:patch * (i + 1), patch * j:patch * (j + 1)] = (
        frames[frame_index, top:top + patch, left:left + patch])
