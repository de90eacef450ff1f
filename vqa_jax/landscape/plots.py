"""PNG plots of landscapes and correlations (matplotlib, Agg backend: no display needed)."""

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
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


def plot_scatter(x: Sequence[float], y: Sequence[float], groups: Sequence[str], path: str, *,
                 xlabel: str, ylabel: str, title: str = "") -> str:
  """Points coloured by group (e.g. training variant) and a least-squares line; returns the path."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  fig, ax = plt.subplots(figsize=(4.8, 3.8))
  for group in dict.fromkeys(groups):
    chosen = np.asarray([g == group for g in groups])
    ax.scatter(x[chosen], y[chosen], label=group, s=28)
  if x.size >= 2 and np.ptp(x) > 0:
    slope, intercept = np.polyfit(x, y, 1)
    xs = np.linspace(x.min(), x.max(), 2)
    ax.plot(xs, slope * xs + intercept, "k--", linewidth=0.8)
  ax.set(xlabel=xlabel, ylabel=ylabel)
  ax.set_title(title, fontsize=8)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return _save(fig, path)
