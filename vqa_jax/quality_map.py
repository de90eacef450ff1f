"""Pictures of a video's local quality map: each clip's map over its middle frame and fragments.

The model maps a clip of fragments (T, S, S, 3) to a local quality map (T', H', W'); position
(h, w) of the map looks at the fragment patch in the same place of the S x S mosaic, which was
cut from the same place of the frame's grid (paper §8.3). `draw` shows, for each test clip, the
map averaged over time (H' x W', 7 x 7 for FAST-VQA-B), drawn with nearest-neighbour upsampling
(so the colours are exactly the map's values) over the clip's middle sampled frame (left) and
over that frame's fragment mosaic (right), with one colour bar for all clips. Matplotlib is used
through its Agg canvas only (no pyplot, no global backend change).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from vqa_jax.data import sampling as sampling_lib
from vqa_jax.data import video_io

PANEL_INCHES = 3.0  # Side of one image panel.
COLORBAR_INCHES = 1.2  # Extra width for the colour bar.
TITLE_INCHES = 0.6  # Extra height for the title.
DPI = 100
ALPHA = 0.55  # Opacity of the map over the images.
CMAP = "RdYlGn"  # Red = low predicted quality, green = high.
MAX_ANNOTATED = 100  # Maps with at most this many positions get their values written in.


def clip_maps(quality_map: np.ndarray) -> np.ndarray:
  """(clips, T', H', W') quality map -> (clips, H', W'), each clip averaged over time."""
  quality_map = np.asarray(quality_map)
  if quality_map.ndim != 4:
    raise ValueError(f"quality map must be (clips, T', H', W'), got shape {quality_map.shape}")
  return quality_map.mean(axis=1)


def middle_frame_indices(num_frames: int, sampling: Mapping[str, Any], num_clips: int,
                         rng: np.random.Generator | None = None) -> np.ndarray:
  """The middle frame of each of `num_clips` clips of `sampling.clip_indices`: (num_clips,)."""
  clip_len = sampling["clip_len"]
  indices = sampling_lib.clip_indices(num_frames, sampling, num_clips, rng)
  return indices.reshape(num_clips, clip_len)[:, clip_len // 2]


def middle_frames(path: str, sampling: Mapping[str, Any], num_clips: int,
                  rng: np.random.Generator | None = None) -> np.ndarray:
  """The decoded middle frames of the clips `sampling.sample_clips` takes: (num_clips, H, W, 3).

  Pass a generator in the state `sample_clips` got (None: centred offsets). As `sample_clips`
  does, the indices are recomputed from the decodable frame count when the container
  over-reports its frames.
  """
  frames, inverse = video_io.read_sampled_frames(
      path, lambda info: middle_frame_indices(info.num_frames, sampling, num_clips, rng))
  return frames[inverse]


def figure_pixels(num_clips: int) -> tuple[int, int]:
  """(width, height) in pixels of the PNG `draw` writes for `num_clips` clips."""
  width = 2 * PANEL_INCHES + COLORBAR_INCHES
  height = num_clips * PANEL_INCHES + TITLE_INCHES
  return round(width * DPI), round(height * DPI)


def _overlay(ax, image: np.ndarray, values: np.ndarray, vmin: float, vmax: float,
             annotate: bool):
  """Draws `image` with `values` stretched over it (nearest); returns the map's artist."""
  height, width = image.shape[:2]
  ax.imshow(image, extent=(0, width, height, 0))
  artist = ax.imshow(values, cmap=CMAP, vmin=vmin, vmax=vmax, alpha=ALPHA,
                     interpolation="nearest", extent=(0, width, height, 0))
  if annotate:
    rows, cols = values.shape
    for (row, col), value in np.ndenumerate(values):
      ax.text((col + 0.5) * width / cols, (row + 0.5) * height / rows, f"{value:.3g}",
              ha="center", va="center", fontsize=6)
  ax.set_xticks([])
  ax.set_yticks([])
  return artist


def draw(png_path: str, frames: np.ndarray, fragments: np.ndarray, quality_map: np.ndarray,
         title: str) -> None:
  """Writes the per-clip maps over `frames` (clips, H, W, 3) and `fragments` (clips, S, S, 3)."""
  maps = clip_maps(quality_map)
  num_clips = maps.shape[0]
  if frames.shape[0] != num_clips or fragments.shape[0] != num_clips:
    raise ValueError(f"{num_clips} clip maps but {frames.shape[0]} frames and "
                     f"{fragments.shape[0]} fragment mosaics")
  width, height = figure_pixels(num_clips)
  figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
  FigureCanvasAgg(figure)
  left, right = 0.3 / (width / DPI), 1 - COLORBAR_INCHES / (width / DPI)
  figure.subplots_adjust(left=left, right=right, bottom=0.02,
                         top=1 - TITLE_INCHES / (height / DPI), wspace=0.05, hspace=0.15)
  axes = figure.subplots(num_clips, 2, squeeze=False)
  vmin, vmax = float(maps.min()), float(maps.max())
  annotate = maps[0].size <= MAX_ANNOTATED
  artist = None
  for clip in range(num_clips):
    _overlay(axes[clip, 0], frames[clip], maps[clip], vmin, vmax, annotate=False)
    artist = _overlay(axes[clip, 1], fragments[clip], maps[clip], vmin, vmax, annotate)
    axes[clip, 0].set_ylabel(f"clip {clip}: mean {maps[clip].mean():.4g}", fontsize=8)
  axes[0, 0].set_title("middle sampled frame", fontsize=8)
  axes[0, 1].set_title("its fragments", fontsize=8)
  figure.suptitle(title, fontsize=9)
  colorbar_axes = figure.add_axes((right + 0.1 * (1 - right), 0.1, 0.12 * (1 - right), 0.8))
  colorbar = figure.colorbar(artist, cax=colorbar_axes)
  colorbar.set_label("local quality (model output)", fontsize=8)
  colorbar.ax.tick_params(labelsize=7)
  figure.savefig(png_path, dpi=DPI)
