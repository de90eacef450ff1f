"""PNG plots of landscapes and correlations (matplotlib, Agg backend: no display needed).

The drawing functions (`plot_lines`, `plot_contour`, `plot_scatter`) and the figures of landscape
records (as `analysis.Analyzer.checkpoint` returns them) and of correlations built on them.
"""

import os
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


VALUE_LABELS = {"loss": "training loss (PLCC + 0.3 rank)", "one_minus_srcc": "1 - SRCC"}


def checkpoint_figures(record: Mapping[str, Any], out_dir: str, name: str) -> list[str]:
  """1-D random-direction curves, the AWP curve and the 2-D contours of one checkpoint."""
  landscape = record["landscape"]
  paths = []
  for value, label in VALUE_LABELS.items():
    curves = {f"direction {k}": ys for k, ys in enumerate(landscape["random"][value])}
    paths.append(plot_lines(landscape["alpha"], curves,
                                  os.path.join(out_dir, f"{name}_random_{value}.png"),
                                  xlabel="alpha (filter-normalised)", ylabel=label, title=name))
    awp = landscape["awp"]
    paths.append(plot_lines(awp["alpha"], {"AWP": awp[value]},
                                  os.path.join(out_dir, f"{name}_awp_{value}.png"),
                                  xlabel="AWP radius gamma (<0: against the gradient)",
                                  ylabel=label, title=name))
    if "plane" in landscape:
      plane = landscape["plane"]
      paths.append(plot_contour(plane["alpha"], plane["beta"], plane[value],
                                      os.path.join(out_dir, f"{name}_plane_{value}.png"),
                                      label=label, title=name))
  return paths


def overlay_figure(records: Mapping[str, Mapping[str, Any]], out_path: str, value: str = "loss",
                   part: str = "random") -> str:
  """One curve per checkpoint: random direction 0 ('random') or the AWP line ('awp')."""
  curves, x = {}, None
  for name, record in records.items():
    landscape = record["landscape"]
    if part == "random":
      x, curves[name] = landscape["alpha"], landscape["random"][value][0]
    else:
      x, curves[name] = landscape["awp"]["alpha"], landscape["awp"][value]
  xlabel = "alpha (filter-normalised)" if part == "random" else "AWP radius gamma"
  return plot_lines(x, curves, out_path, xlabel=xlabel, ylabel=VALUE_LABELS[value])


def _describe(label: str, c: Mapping[str, float]) -> str:
  return (f"{label}: Pearson {c['pearson_r']:+.2f} (p={c['pearson_p']:.2g}), "
          f"Spearman {c['spearman_rho']:+.2f} (p={c['spearman_p']:.2g})")


def scatter_figures(rows: Sequence[Mapping[str, Any]], measures: Sequence[str],
                    gaps: Sequence[str], pooled: Mapping[str, Mapping[str, Mapping[str, float]]],
                    out_dir: str, *, colour_key: str = "variant", marker_key: str | None = None,
                    within: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                    ) -> list[str]:
  """One scatter of each sharpness measure against each gap (scatter_<measure>_vs_<gap>.png).

  Points are coloured by row[colour_key] and shaped by row[marker_key]; the title gives the pooled
  correlations (`pooled[measure][gap]`) and, with `within` (correlations within the colour groups),
  those too, and each colour group then gets its own fit line.
  """
  paths = []
  markers = [r[marker_key] for r in rows] if marker_key else None
  for measure in measures:
    for gap in gaps:
      title = _describe("pooled", pooled[measure][gap])
      if within is not None:
        title += "\n" + _describe(f"within {colour_key}", within[measure][gap])
      paths.append(plot_scatter(
          np.asarray([r[measure] for r in rows]), np.asarray([r[gap] for r in rows]),
          [r.get(colour_key, "") for r in rows],
          os.path.join(out_dir, f"scatter_{measure}_vs_{gap}.png"), xlabel=measure, ylabel=gap,
          title=title, markers=markers, colour_title=colour_key, marker_title=marker_key or "",
          fit_per_colour=within is not None))
  return paths
