"""PNG plots of landscapes and correlations (matplotlib, Agg backend: no display needed)."""

from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np


def _save(fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_lines(x: Sequence[float], curves: Mapping[str, Sequence[float]], path: str, *,
               xlabel: str, ylabel: str, title: str = "") -> str:
  """One curve per label over the same x (a 1-D landscape); returns the path."""
  fig, ax = plt.subplots(figsize=(5, 3.6))
  for label, y in curves.items():
    ax.plot(x, y, marker=".", label=label)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.grid(alpha=0.3)
  if len(curves) > 1:
    ax.legend(fontsize=7)
  return _save(fig, path)


def plot_contour(alphas: Sequence[float], betas: Sequence[float], values, path: str, *,
                 label: str, title: str = "", levels: int = 20) -> str:
  """Filled contours of values[i_alpha][j_beta] (a 2-D landscape); returns the path."""
  values = np.asarray(values, np.float64)
  fig, ax = plt.subplots(figsize=(4.6, 4))
  filled = ax.contourf(alphas, betas, values.T, levels=levels, cmap="viridis")
  ax.contour(alphas, betas, values.T, levels=levels, colors="k", linewidths=0.3)
  fig.colorbar(filled, ax=ax, label=label)
  ax.plot([0], [0], "r+", markersize=10)
  ax.set(xlabel="alpha (random direction 0)", ylabel="beta (random direction 1)", title=title)
  return _save(fig, path)


_MARKERS = "os^DvPX*<>"


def _fit_line(ax, x: np.ndarray, y: np.ndarray, **style) -> None:
  if x.size >= 2 and np.ptp(x) > 0:
    slope, intercept = np.polyfit(x, y, 1)
    xs = np.linspace(x.min(), x.max(), 2)
    ax.plot(xs, slope * xs + intercept, **style)


def plot_scatter(x: Sequence[float], y: Sequence[float], colours: Sequence[Any], path: str, *,
                 xlabel: str, ylabel: str, title: str = "", markers: Sequence[Any] | None = None,
                 colour_title: str = "", marker_title: str = "",
                 fit_per_colour: bool = False) -> str:
  """Points coloured by one label (e.g. seed), shaped by another (e.g. variant); returns the path.

  The black dashed line is the least-squares fit over all points; with `fit_per_colour` each
  colour group gets its own fit line in its colour (the within-group trend).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  colours = [str(c) for c in colours]
  has_markers = markers is not None
  markers = [str(m) for m in markers] if has_markers else [""] * len(colours)
  colour_of = {c: f"C{i % 10}" for i, c in enumerate(dict.fromkeys(colours))}
  marker_of = {m: _MARKERS[i % len(_MARKERS)] for i, m in enumerate(dict.fromkeys(markers))}
  fig, ax = plt.subplots(figsize=(5.2, 4.0))
  for c in colour_of:
    for m in marker_of:
      chosen = np.asarray([ci == c and mi == m for ci, mi in zip(colours, markers)])
      if chosen.any():
        ax.scatter(x[chosen], y[chosen], color=colour_of[c], marker=marker_of[m], s=34,
                   edgecolors="k", linewidths=0.4)
    if fit_per_colour:
      chosen = np.asarray([ci == c for ci in colours])
      _fit_line(ax, x[chosen], y[chosen], color=colour_of[c], linewidth=1.0)
  _fit_line(ax, x, y, color="k", linestyle="--", linewidth=0.8)
  handles = [Line2D([], [], color=colour_of[c], marker="o", linestyle="-" if fit_per_colour else "",
                    label=f"{colour_title} {c}".strip()) for c in colour_of]
  if has_markers:
    handles += [Line2D([], [], color="0.4", marker=marker_of[m], linestyle="",
                       label=f"{marker_title} {m}".strip()) for m in marker_of]
  ax.set(xlabel=xlabel, ylabel=ylabel)
  ax.set_title(title, fontsize=7.5)
  ax.grid(alpha=0.3)
  ax.legend(handles=handles, fontsize=6.5, loc="best")
  return _save(fig, path)
