"""Forest plot of paired deltas: each variant's mean Δ with its 95% t interval, per outcome."""

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np


def forest_plot(rows: Sequence[Mapping], path: str, title: str) -> str:
  """Absolute (left) and relative % (right) Δ with intervals, one line per comparison row."""
  labels = [f"{r['variant']}: {r['outcome']}" for r in rows]
  y = np.arange(len(rows))[::-1]
  fig, axes = plt.subplots(1, 2, figsize=(10, 0.4 * len(rows) + 1.4), sharey=True)
  for ax, key, scale, xlabel in ((axes[0], "delta", 1.0, "Δ (variant − baseline)"),
                                 (axes[1], "relative", 100.0, "Δ / |baseline| (%)")):
    mean = np.array([r[key]["mean"] for r in rows]) * scale
    low = np.array([r[key]["t_low"] for r in rows]) * scale
    high = np.array([r[key]["t_high"] for r in rows]) * scale
    has_ci = np.isfinite(low) & np.isfinite(high)
    err = np.where(has_ci, [mean - low, high - mean], 0.0)
    ax.errorbar(mean, y, xerr=err, fmt="o", capsize=3)
    ax.axvline(0.0, color="black", lw=0.8, ls="--")
    ax.set(xlabel=xlabel)
    ax.grid(alpha=0.3, axis="x")
  axes[0].set_yticks(y, labels, fontsize=7)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
