"""PNGs of landscape records (as `analysis.Analyzer.checkpoint` returns them) and correlations."""

import os
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_jax.landscape import plots

VALUE_LABELS = {"loss": "training loss (PLCC + 0.3 rank)", "one_minus_srcc": "1 - SRCC"}


def checkpoint_figures(record: Mapping[str, Any], out_dir: str, name: str) -> list[str]:
  """1-D random-direction curves, the AWP curve and the 2-D contours of one checkpoint."""
  landscape = record["landscape"]
  paths = []
  for value, label in VALUE_LABELS.items():
    curves = {f"direction {k}": ys for k, ys in enumerate(landscape["random"][value])}
    paths.append(plots.plot_lines(landscape["alpha"], curves,
                                  os.path.join(out_dir, f"{name}_random_{value}.png"),
                                  xlabel="alpha (filter-normalised)", ylabel=label, title=name))
    awp = landscape["awp"]
    paths.append(plots.plot_lines(awp["alpha"], {"AWP": awp[value]},
                                  os.path.join(out_dir, f"{name}_awp_{value}.png"),
                                  xlabel="AWP radius gamma (<0: against the gradient)",
                                  ylabel=label, title=name))
    if "plane" in landscape:
      plane = landscape["plane"]
      paths.append(plots.plot_contour(plane["alpha"], plane["beta"], plane[value],
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
  return plots.plot_lines(x, curves, out_path, xlabel=xlabel, ylabel=VALUE_LABELS[value])


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
      paths.append(plots.plot_scatter(
          np.asarray([r[measure] for r in rows]), np.asarray([r[gap] for r in rows]),
          [r.get(colour_key, "") for r in rows],
          os.path.join(out_dir, f"scatter_{measure}_vs_{gap}.png"), xlabel=measure, ylabel=gap,
          title=title, markers=markers, colour_title=colour_key, marker_title=marker_key or "",
          fit_per_colour=within is not None))
  return paths
