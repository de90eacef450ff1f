"""The study's report: OUT/report.md with its tables and PNGs (from the runs' JSON records)."""

import os
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_jax.landscape import figures
from vqa_jax.landscape import plots


def _mean_std(values: Sequence[float]) -> str:
  values = np.asarray(values, np.float64)
  std = values.std(ddof=1) if values.size > 1 else 0.0
  return f"{values.mean():.3f} ± {std:.3f}"


def _columns(run: Mapping[str, Any], measures: Sequence[str]) -> dict[str, float]:
  """The per-run numbers of the summary tables."""
  trainer = run["trainer_results"]
  m = run["metrics"]
  return {
      "test SRCC (trainer, raw)": trainer["test"]["raw"]["srcc"],
      "cross SRCC (trainer, raw)": trainer["cross"]["raw"]["srcc"],
      "test SRCC (EMA)": trainer["test"]["ema"]["srcc"],
      "cross SRCC (EMA)": trainer["cross"]["ema"]["srcc"],
      "train SRCC (fixed)": m["train"]["srcc"], "test SRCC (fixed)": m["test"]["srcc"],
      "cross SRCC (fixed)": m["cross"]["srcc"],
      **{k: run["gaps"][k] for k in ("srcc_gap", "cross_srcc_gap", "loss_gap")},
      **{k: run["sharpness"][k] for k in measures},
  }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(r) + " |" for r in rows]


def variant_table(runs: Mapping[str, Mapping[str, Any]], measures: Sequence[str]) -> list[str]:
  """Mean ± sample std over seeds of every column, one row per variant."""
  by_variant: dict[str, list[dict]] = {}
  for run in runs.values():
    by_variant.setdefault(run["variant"], []).append(_columns(run, measures))
  names = list(next(iter(by_variant.values()))[0])
  rows = [[v, str(len(cols))] + [_mean_std([c[n] for c in cols]) for n in names]
          for v, cols in by_variant.items()]
  return _table(["variant", "seeds"] + names, rows)


def run_table(runs: Mapping[str, Mapping[str, Any]], measures: Sequence[str]) -> list[str]:
  """Every run's numbers."""
  names = list(_columns(next(iter(runs.values())), measures))
  rows = [[name] + [f"{v:.4g}" for v in _columns(run, measures).values()]
          for name, run in runs.items()]
  return _table(["run"] + names, rows)


def correlation_lines(correlations: Mapping[str, Any]) -> list[str]:
  """Pearson and Spearman (p-values) of each measure with each gap."""
  rows = [[m, g, f"{c['pearson_r']:+.3f}", f"{c['pearson_p']:.3g}", f"{c['spearman_rho']:+.3f}",
           f"{c['spearman_p']:.3g}", str(c["n"])]
          for m, by_gap in correlations.items() for g, c in by_gap.items()]
  return _table(["sharpness measure", "gap", "Pearson r", "p", "Spearman rho", "p", "n"], rows)


def write_report(out: str, meta: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]],
                 rows: Sequence[Mapping[str, Any]], correlations: Mapping[str, Any],
                 interpolation: Mapping[str, Any] | None, measures: Sequence[str],
                 gaps: Sequence[str]) -> str:
  """Writes OUT/report.md and OUT/figures/*.png; returns the report's path."""
  fig_dir = os.path.join(out, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  rel = lambda p: os.path.relpath(p, out)
  lines = ["# Loss landscape and generalization gap: synthetic two-domain study", "",
           f"Command: `{meta['command']}`", "",
           f"{meta['steps']} training steps per run; variants (overrides of the base config): "
           f"{meta['variants']}. Fixed sets (1 centred clip per video, eval mode): "
           f"{meta['fixed_sets']}. Landscapes and sharpness on the train subset; loss = the "
           "training loss (PLCC + 0.3 rank over minibatches of the training batch size). "
           "Gaps: srcc_gap = SRCC(train) - SRCC(test); loss_gap = loss(test) - loss(train); "
           "cross_* the same against domain B. Sharpness (analysis settings "
           f"{meta.get('analysis', {})}): loss_increase = mean over the random filter-normalised "
           "directions of L(w + a_s d) - L(w); loss_increase_line = the same at a = +-0.5 read off "
           "the 1-D lines; worst_case_increase = max loss in the layer-relative ball of radius "
           "ball_gamma (projected ascent) - L(w); top_eigenvalue (power iteration) and "
           "hessian_trace (Hutchinson) of the training loss's Hessian.", "",
           "## Per variant (mean ± sample std over seeds)", ""]
  lines += variant_table(runs, measures)
  lines += ["", "## Sharpness vs generalization gap (across all runs)", ""]
  lines += correlation_lines(correlations) if correlations else ["(fewer than 3 runs)"]
  lines += ["", "## Every run", ""] + run_table(runs, measures) + ["", "## Figures", ""]
  by_variant = {}
  for name, run in runs.items():
    by_variant.setdefault(run["variant"], name)
  first_runs = {name: runs[name] for name in by_variant.values()}
  for value in figures.VALUE_LABELS:
    for part in ("random", "awp"):
      path = os.path.join(fig_dir, f"overlay_{part}_{value}.png")
      path = figures.overlay_figure(first_runs, path, value, part)
      lines.append(f"![{part} {value}]({rel(path)})")
  for name, run in first_runs.items():
    for path in figures.checkpoint_figures(run, fig_dir, name):
      if "_plane_loss" in path:
        lines.append(f"![{name} plane]({rel(path)})")
  if correlations:
    for path in figures.scatter_figures(rows, measures, gaps[0], correlations, fig_dir):
      lines.append(f"![scatter]({rel(path)})")
  if interpolation is not None:
    path = plots.plot_lines(interpolation["t"], {"loss": interpolation["loss"]},
                            os.path.join(fig_dir, "interpolation_loss.png"),
                            xlabel="t (0: baseline, 1: AWP, same seed)", ylabel="training loss")
    lines.append(f"![interpolation]({rel(path)})")
  report = os.path.join(out, "report.md")
  with open(report, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return report
