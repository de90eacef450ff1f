"""Pictures of a video's local quality map: each clip's map over its middle frame and fragments.

The model maps a clip of fragments (T, S, S, 3) to a local quality map (T', H', W'); position
(h, w) of the map looks at the fragment patch in the same place of the S x S mosaic, which was
cut from the same place of the frame's grid (paper §8.3). `draw` shows, for each test clip, the
map averaged over time (H' x W', 7 x 7 for FAST-VQA-B): on the left the clip's middle sampled
frame left uncovered, each grid cell outlined in its map colour (so dark content stays visible);
on the right the fragment mosaic under the map (nearest-neighbour, so the colours are exactly the
map's values) with each value written in white on a black outline. Below, the curve of the score
over time: one point per temporal map position of every clip (FAST-VQA-B: 8 per clip), placed at
the mean frame index it covers.

Values are shown on a `Display` scale, each cell's raw value mapped as a video's raw score is (so
with a non-linear calibration the cells' mean is not the video's MOS; the clip labels and the
curve map the mean raw value): with a calibration (`vqa_jax.scoring.calibration`), the calibrated
MOS scale (or the upstream [0, 1] score) with fixed limits, so that pictures of different videos
compare; without one, or with `per_video=True`, the limits stretch to the video's own values
(said on the colour bar). The colormap is cividis (colour-blind safe, monotone lightness).
Matplotlib is used through its Agg canvas only (no pyplot, no global backend change).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from matplotlib import patheffects
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from vqa_jax.scoring import calibration as calibration_lib
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data import video_io

PANEL_INCHES = 3.0  # Side of one image panel.
COLORBAR_INCHES = 1.2  # Extra width for the colour bar.
TITLE_INCHES = 0.6  # Extra height for the title.
CURVE_INCHES = 1.8  # Extra height for the score-over-time curve.
DPI = 100
ALPHA = 0.5  # Opacity of the map over the fragment mosaic.
CMAP = "cividis"  # Colour-blind safe; dark blue = low predicted quality, yellow = high.
MAX_ANNOTATED = 100  # Maps with at most this many positions get their values written in.
LABEL_POINTS = 8  # Font size of the values written in the cells.


@dataclasses.dataclass(frozen=True)
class Display:
  """How map values are shown: raw -> shown values, fixed limits (None: per video), their name."""

  transform: Callable[[np.ndarray], np.ndarray] = np.asarray
  limits: tuple[float, float] | None = None
  label: str = "raw model output, no calibration (per-video stretch)"


def display_for(calibration: calibration_lib.Calibration | None,
                per_video: bool = False) -> Display:
  """The calibration's scale with its fixed limits (per_video: stretched per video); raw without."""
  if calibration is None:
    return Display()
  transform, limits, label = calibration.display_scale()
  if per_video:
    return Display(transform, None, label + " (per-video stretch)")
  return Display(transform, tuple(limits), label)


def clip_maps(quality_map: np.ndarray) -> np.ndarray:
  """(clips, T', H', W') quality map -> (clips, H', W'), each clip averaged over time."""
  quality_map = np.asarray(quality_map)
  if quality_map.ndim != 4:
    raise ValueError(f"quality map must be (clips, T', H', W'), got shape {quality_map.shape}")
  return quality_map.mean(axis=1)


def sampled_frames(path: str, sampling: Mapping[str, Any], num_clips: int,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(decoded middle frames (num_clips, H, W, 3), all clip frame indices (num_clips, clip_len)).

  The clips are the ones `sampling.sample_clips` takes: pass a generator in the state it got
  (None: centred offsets). As `sample_clips` does, the indices are recomputed from the decodable
  frame count when the container over-reports its frames.
  """
  clip_len = sampling["clip_len"]
  chosen = []

  def middle(info):
    chosen.append(clip_sampler.clip_indices(info.num_frames, sampling, num_clips, rng)
                  .reshape(num_clips, clip_len))
    return chosen[-1][:, clip_len // 2]

  frames, inverse = video_io.read_sampled_frames(path, middle)
  return frames[inverse], chosen[-1]


def segment_positions(frame_indices: np.ndarray, segments: int) -> np.ndarray:
  """Mean frame index each of a clip's `segments` temporal map positions covers: (clips, segments)."""
  frame_indices = np.asarray(frame_indices, np.float64)
  clips, clip_len = frame_indices.shape
  if clip_len % segments:
    raise ValueError(f"{clip_len} frames per clip do not split into {segments} map positions")
  return frame_indices.reshape(clips, segments, clip_len // segments).mean(axis=2)


def score_curve(quality_map: np.ndarray, display: Display) -> np.ndarray:
  """Shown score of each (clip, temporal map position): the spatial mean, then the transform."""
  return np.asarray(display.transform(np.asarray(quality_map, np.float64).mean(axis=(2, 3))))


def figure_pixels(num_clips: int, curve: bool = True) -> tuple[int, int]:
  """(width, height) in pixels of the PNG `draw` writes for `num_clips` clips."""
  width = 2 * PANEL_INCHES + COLORBAR_INCHES
  height = num_clips * PANEL_INCHES + TITLE_INCHES + (CURVE_INCHES if curve else 0.0)
  return round(width * DPI), round(height * DPI)


def _outline_cells(ax, image: np.ndarray, values: np.ndarray, cmap, norm) -> None:
  """Draws `image` uncovered, each map cell outlined in its value's colour."""
  height, width = image.shape[:2]
  ax.imshow(image, extent=(0, width, height, 0))
  rows, cols = values.shape
  cell_w, cell_h = width / cols, height / rows
  for (row, col), value in np.ndenumerate(values):
    corner, size = (col * cell_w + 1, row * cell_h + 1), (cell_w - 2, cell_h - 2)
    ax.add_patch(patches.Rectangle(corner, *size, fill=False, edgecolor="white", linewidth=3.5))
    ax.add_patch(patches.Rectangle(corner, *size, fill=False, edgecolor=cmap(norm(value)),
                                   linewidth=2.5))
  ax.set_xticks([])
  ax.set_yticks([])


def _overlay(ax, image: np.ndarray, values: np.ndarray, limits: tuple[float, float],
             annotate: bool) -> None:
  """Draws `image` with `values` stretched over it (nearest), values written in."""
  height, width = image.shape[:2]
  ax.imshow(image, extent=(0, width, height, 0))
  ax.imshow(values, cmap=CMAP, vmin=limits[0], vmax=limits[1], alpha=ALPHA,
                     interpolation="nearest", extent=(0, width, height, 0))
  if annotate:
    rows, cols = values.shape
    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
    for (row, col), value in np.ndenumerate(values):
      ax.text((col + 0.5) * width / cols, (row + 0.5) * height / rows, f"{value:.3g}",
              ha="center", va="center", fontsize=LABEL_POINTS, color="white",
              path_effects=outline)
  ax.set_xticks([])
  ax.set_yticks([])


def shown_limits(values: np.ndarray, display: Display) -> tuple[float, float]:
  """The colour scale's (min, max): the display's fixed limits, else the values' own range."""
  if display.limits is not None:
    return float(display.limits[0]), float(display.limits[1])
  low, high = float(np.min(values)), float(np.max(values))
  return (low, high) if high > low else (low - 0.5, high + 0.5)


def _curve(ax, values: np.ndarray, frame_indices: np.ndarray,
           limits: tuple[float, float]) -> None:
  """The score over time: `values` (clips, T') at the mean frames the positions cover."""
  positions = segment_positions(frame_indices, values.shape[1])
  for clip in range(values.shape[0]):
    ax.plot(positions[clip], values[clip], marker="o", markersize=3, linewidth=1.5,
            color="#1f4e79", label="per clip segment" if clip == 0 else None)
  ax.set_ylim(*limits)
  ax.set_xlabel("frame", fontsize=8)
  ax.tick_params(labelsize=7)
  ax.grid(True, linewidth=0.5, alpha=0.5)


def draw(png_path: str, frames: np.ndarray, fragments: np.ndarray, quality_map: np.ndarray,
         title: str, display: Display = Display(), frame_indices: np.ndarray | None = None) -> None:
  """Writes the per-clip maps over `frames` (clips, H, W, 3) and `fragments` (clips, S, S, 3).

  With `frame_indices` (clips, clip_len), the frames each clip was sampled from, the score-over-
  time curve is drawn below.
  """
  from matplotlib import cm  # pylint: disable=g-import-not-at-top
  from matplotlib import colors  # pylint: disable=g-import-not-at-top
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  maps = np.asarray(display.transform(clip_maps(quality_map)))
  num_clips = maps.shape[0]
  if frames.shape[0] != num_clips or fragments.shape[0] != num_clips:
    raise ValueError(f"{num_clips} clip maps but {frames.shape[0]} frames and "
                     f"{fragments.shape[0]} fragment mosaics")
  curve = frame_indices is not None
  width, height = figure_pixels(num_clips, curve)
  figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
  FigureCanvasAgg(figure)
  left, right = 0.3 / (width / DPI), 1 - COLORBAR_INCHES / (width / DPI)
  bottom = (CURVE_INCHES / (height / DPI)) if curve else 0.02
  figure.subplots_adjust(left=left, right=right, bottom=bottom,
                         top=1 - TITLE_INCHES / (height / DPI), wspace=0.05, hspace=0.15)
  axes = figure.subplots(num_clips, 2, squeeze=False)
  values = score_curve(quality_map, display)
  limits = shown_limits(np.concatenate([maps.ravel(), values.ravel()]), display)
  cmap, norm = colormaps[CMAP], colors.Normalize(*limits)
  annotate = maps[0].size <= MAX_ANNOTATED
  for clip in range(num_clips):
    _outline_cells(axes[clip, 0], frames[clip], maps[clip], cmap, norm)
    _overlay(axes[clip, 1], fragments[clip], maps[clip], limits, annotate)
    clip_score = float(display.transform(np.mean(quality_map[clip], dtype=np.float64)))
    axes[clip, 0].set_ylabel(f"clip {clip}: {clip_score:.4g}", fontsize=8)
  axes[0, 0].set_title("middle sampled frame", fontsize=8)
  axes[0, 1].set_title("its fragments", fontsize=8)
  # The title names the video; Agg rejects the surrogate escapes of a name that is not UTF-8.
  figure.suptitle(video_io.printable_path(title), fontsize=9)
  colorbar_axes = figure.add_axes((right + 0.1 * (1 - right), bottom + 0.05 * (1 - bottom),
                                   0.12 * (1 - right), 0.8 * (1 - bottom)))
  colorbar = figure.colorbar(cm.ScalarMappable(norm, cmap), cax=colorbar_axes)  # opaque
  colorbar.set_label(display.label, fontsize=8)
  colorbar.ax.tick_params(labelsize=7)
  if curve:
    curve_axes = figure.add_axes((left, 0.35 * bottom, right - left, 0.55 * bottom))
    _curve(curve_axes, values, frame_indices, limits)
    curve_axes.set_ylabel(display.label.split(",")[0].split(" (")[0], fontsize=8)
  figure.savefig(png_path, dpi=DPI)
