"""The flatness report of the cross-dataset runs: OUT/cross/study.json, report.md and its PNGs.

`save_study` writes it from the runs' JSON records (`vqa_jax.study`'s report calls it); `rebuild`
redoes it from an existing folder (study.json and runs/*.json) without retraining, as
`python -m vqa_jax.study --out=OUT --report_only` does.
"""

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_jax.landscape import plots
from vqa_jax.study import flatness_rows

# Columns of the paired table: the variant minus the baseline of the same seed.
PAIRED_COLUMNS = ("test SRCC (trainer, raw)", "cross SRCC (trainer, raw)", "srcc_gap",
                  "cross_srcc_gap", "worst_case_increase", "hessian_trace")


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
      **{k: run["gaps"][k] for k in flatness_rows.GAPS},
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


def paired_table(runs: Mapping[str, Mapping[str, Any]], measures: Sequence[str],
                 reference: str = "baseline") -> list[str]:
  """Mean ± sample std over seeds of (variant − the `reference` run of the same seed)."""
  by_seed = {run["seed"]: _columns(run, measures) for run in runs.values()
             if run["variant"] == reference}
  diffs: dict[str, list[dict]] = {}
  for run in runs.values():
    if run["variant"] != reference and run["seed"] in by_seed:
      cols, ref = _columns(run, measures), by_seed[run["seed"]]
      diffs.setdefault(run["variant"], []).append({n: cols[n] - ref[n] for n in PAIRED_COLUMNS})
  rows = [[v, str(len(d))] + [_mean_std([x[n] for x in d]) for n in PAIRED_COLUMNS]
          for v, d in diffs.items()]
  return _table(["variant", "seeds"] + [f"Δ {n}" for n in PAIRED_COLUMNS], rows)


def _cell(c: Mapping[str, float], stat: str, p: str) -> str:
  return f"{c[stat]:+.3f} ({c[p]:.2g})"


def correlation_lines(correlations: Mapping[str, Any]) -> list[str]:
  """Pooled and within-seed Pearson and Spearman (p-values) of each measure with each gap."""
  pooled, within = correlations["pooled"], correlations.get("within_seed")
  header = ["sharpness measure", "gap", "pooled Pearson r (p)", "pooled Spearman rho (p)"]
  if within:
    header += ["within-seed Pearson r (p)", "within-seed Spearman rho (p)"]
  rows = []
  for m, by_gap in pooled.items():
    for g, c in by_gap.items():
      row = [m, g, _cell(c, "pearson_r", "pearson_p"), _cell(c, "spearman_rho", "spearman_p")]
      if within:
        w = within[m][g]
        row += [_cell(w, "pearson_r", "pearson_p"), _cell(w, "spearman_rho", "spearman_p")]
      rows.append(row)
  return _table(header, rows)


def _correlation_note(correlations: Mapping[str, Any]) -> str:
  first = lambda table: next(iter(next(iter(table.values())).values()))
  note = f"Pooled: over all n = {first(correlations['pooled'])['n']} runs."
  if "within_seed" in correlations:
    w = first(correlations["within_seed"])
    note += (f" Within seed: each seed's mean is removed from the measure and from the gap before "
             f"Pearson's r, and the Spearman ranks are taken within each seed (and centred), so "
             f"only differences between variants trained from the same seed (same initialisation "
             f"and data order) count; p-values from the t distribution with n - seeds - 1 = "
             f"{w['n']} - {w['groups']} - 1 = {w['dof']} degrees of freedom. A pooled "
             f"correlation that vanishes within seeds comes from differences between seeds.")
  else:
    note += " (Within-seed correlations need >= 2 runs per seed.)"
  return note


def write_report(out: str, meta: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]],
                 rows: Sequence[Mapping[str, Any]], correlations: Mapping[str, Any],
                 interpolation: Mapping[str, Any] | None, measures: Sequence[str],
                 gaps: Sequence[str]) -> str:
  """Writes OUT/report.md and OUT/figures/*.png; returns the report's path.

  `correlations` is `flatness_rows.correlations(rows)`: {'pooled': ..., 'within_seed': ...}, either
  absent when there are too few runs.
  """
  fig_dir = os.path.join(out, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  rel = lambda p: os.path.relpath(p, out)
  lines = ["# Loss landscape and generalization gap: synthetic two-domain study", "",
           f"Command: `{meta['command']}`"]
  if meta.get("report_command"):
    lines += ["", f"Report rebuilt from the stored runs by `{meta['report_command']}`"]
  lines += ["",
            f"{meta['steps']} training steps per run; variants (overrides of the base config): "
            f"{meta['variants']}. Fixed sets (1 centred clip per video, eval mode): "
            f"{meta['fixed_sets']}. Landscapes and sharpness on the train subset; loss = the "
            "training loss (PLCC + 0.3 rank over minibatches of the training batch size).", "",
            "Gaps are the train metric minus the test metric, on the fixed clips: "
            "srcc_gap = SRCC(train) - SRCC(test), loss_gap = loss(train) - loss(test), and "
            "cross_srcc_gap / cross_loss_gap the same with domain B ('cross') in place of the "
            "domain-A test set. A model that does better on its training videos than on unseen "
            "ones has a positive SRCC gap and a negative loss gap (its training loss is lower): "
            "overfitting makes the loss gap negative.", "",
            f"Sharpness (analysis settings {meta.get('analysis', {})}): loss_increase = mean over "
            "the random filter-normalised directions of L(w + a_s d) - L(w); loss_increase_line = "
            f"the same at a = +-{flatness_rows.LINE_ALPHA} read off the 1-D lines; "
            "worst_case_increase = max loss in the layer-relative ball of radius ball_gamma "
            "(projected ascent) - L(w); top_eigenvalue (power iteration) and hessian_trace "
            "(Hutchinson) of the training loss's Hessian.", "",
            "## Per variant (mean ± sample std over seeds)", ""]
  lines += variant_table(runs, measures)
  lines += ["", "## Paired with the same seed's baseline (variant - baseline, mean ± sample std)",
            ""] + paired_table(runs, measures)
  lines += ["", "## Sharpness vs generalization gap: pooled and within seed", ""]
  if correlations:
    lines += [_correlation_note(correlations), ""] + correlation_lines(correlations)
  else:
    lines += ["(fewer than 3 runs)"]
  lines += ["", "## Every run", ""] + run_table(runs, measures) + ["", "## Figures", ""]
  by_variant = {}
  for name, run in runs.items():
    by_variant.setdefault(run["variant"], name)
  first_runs = {name: runs[name] for name in by_variant.values()}
  for value in plots.VALUE_LABELS:
    for part in ("random", "awp"):
      path = os.path.join(fig_dir, f"overlay_{part}_{value}.png")
      path = plots.overlay_figure(first_runs, path, value, part)
      lines.append(f"![{part} {value}]({rel(path)})")
  for name, run in first_runs.items():
    for path in plots.checkpoint_figures(run, fig_dir, name):
      if "_plane_loss" in path:
        lines.append(f"![{name} plane]({rel(path)})")
  if interpolation is not None:
    path = plots.plot_lines(interpolation["t"], {"loss": interpolation["loss"]},
                            os.path.join(fig_dir, "interpolation_loss.png"),
                            xlabel=f"t (0: {interpolation.get('a', 'baseline')}, 1: "
                            f"{interpolation.get('b', 'AWP')}, same seed)", ylabel="training loss")
    lines.append(f"![interpolation]({rel(path)})")
  if correlations:
    lines += ["", "### Sharpness vs gap (colour: seed, marker: variant; black dashed: pooled fit, "
              "coloured: per-seed fits)", ""]
    paths = plots.scatter_figures(rows, measures, gaps, correlations["pooled"], fig_dir,
                                    colour_key=flatness_rows.GROUP_KEY, marker_key="variant",
                                    within=correlations.get("within_seed"))
    lines += [f"![{os.path.basename(p)[:-4]}]({rel(p)})" for p in paths]
  report = os.path.join(out, "report.md")
  with open(report, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return report


def save_study(out: str, meta: Mapping[str, Any], runs: Mapping[str, dict],
               interpolation: Mapping[str, Any] | None) -> str:
  """Rows and correlations from the runs; writes OUT/study.json and the report (its path)."""
  rows = [flatness_rows.study_row(name, record) for name, record in runs.items()]
  correlations = flatness_rows.correlations(rows)
  with open(os.path.join(out, "study.json"), "w", encoding="utf-8") as f:
    json.dump({"meta": meta, "runs": runs, "rows": rows, "correlations": correlations,
               "interpolation": interpolation}, f)
  return write_report(out, meta, runs, rows, correlations, interpolation,
                      flatness_rows.MEASURES, flatness_rows.GAPS)


def rebuild(out: str, command: str) -> str:
  """Rebuilds OUT/study.json and the report from OUT/study.json's meta and OUT/runs/*.json.

  Gaps and derived measures are recomputed from the stored metrics and landscapes (the run
  records are rewritten with them); nothing is trained or evaluated. Returns the report's path.
  """
  study = flatness_rows.load_json(os.path.join(out, "study.json"))
  meta = {**study["meta"], "report_command": command}
  runs = flatness_rows.load_runs(out, list(meta.get("variants", {})))
  report = save_study(out, meta, runs, study.get("interpolation"))
  for name, record in runs.items():
    with open(os.path.join(out, "runs", f"{name}.json"), "w", encoding="utf-8") as f:
      json.dump(record, f)
  return report
