"""The study's report: OUT/study.json and OUT/report.md (paired tables, forest plots, flatness).

The cross-dataset runs are landscape-study runs, so their flatness report is the landscape study's
(`landscape.flatness_report.save_study` into OUT/cross/: landscapes, sharpness, pooled and within-seed
correlations with the gaps, scatter plots); OUT/report.md carries its within-seed correlation table
and links to it. `rebuild` redoes everything from the stored records (`--report_only`).
"""

import json
import math
import os
from typing import Any, Mapping, Sequence

from vqa_jax.study import flatness_rows
from vqa_jax.study import flatness_report
from vqa_jax.study import forest
from vqa_jax.study import significance
from vqa_jax.study import comparisons

TITLES = {"cross": "Cross-dataset (train on the labelled set, test zero-shot)",
          "finetune": "Fine-tuning (from each variant's cross-dataset model; linear probe, then "
                      "full fine-tuning on the target's split of the same seed)"}


def _interval(stats: Mapping[str, float], percent: bool = False) -> str:
  """'+m [lo, hi]' (4 decimals, or percent with 2), or '+m (no interval)' when there is none."""
  fmt = (lambda x: f"{x * 100:+.2f}%") if percent else (lambda x: f"{x:+.4f}")
  if math.isnan(stats["mean"]):
    return "n/a"
  if math.isnan(stats["ci_low"]):
    return fmt(stats["mean"]) + " (no interval: 1 pair)"
  return f"{fmt(stats['mean'])} [{fmt(stats['ci_low'])}, {fmt(stats['ci_high'])}]"


def verdict(row: Mapping[str, Any]) -> str:
  """What the interval supports: higher, lower, no difference shown, or too few pairs to say."""
  if row["n"] < significance.MIN_PAIRS:
    return f"too few pairs (< {significance.MIN_PAIRS})"
  if not row["excludes_zero"]:
    return "not shown (interval contains 0)"
  return "variant higher" if row["delta"]["mean"] > 0 else "variant lower"


def comparison_table(rows: Sequence[Mapping[str, Any]], confidence: float) -> list[str]:
  """Markdown table: one line per (variant, outcome) with both deltas, their CIs and t-test p."""
  pct = int(round(confidence * 100))
  header = ["variant", "outcome", "pairs", "baseline", "variant mean",
            f"Δ absolute [{pct}% CI]", f"Δ relative [{pct}% CI]", "paired t p", "verdict"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in rows:
    cells = [r["variant"], r["outcome"], str(r["n"]), f"{r['baseline_mean']:.4f}",
             f"{r['variant_mean']:.4f}",
             _interval(r["delta"]), _interval(r["relative"], percent=True),
             f"{r['t_pvalue']:.3g}", verdict(r)]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def pairing_lines(protocol: str, runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
  """Per run its fingerprint digests (8 hex digits) and what it must share with its baseline."""
  shared = comparisons.PAIRED_FIELDS[protocol]
  lines = [f"Shared with the same seed's baseline (checked before the report was written): "
           f"{', '.join(shared)}.", "", "| run | init | batches | rng |", "|---|---|---|---|"]
  for name, run in runs.items():
    fp = run["pairing"]
    lines.append(f"| {name} | {fp['init'][:8]} | {fp['batches'][:8]} | {fp['rng'][:8]} |")
  return lines


def _flatness_lines(out: str, meta: Mapping[str, Any], runs: Mapping[str, dict]) -> list[str]:
  """Writes the landscape report of the cross-dataset runs; the lines that summarise it here."""
  cross_out = os.path.join(out, "cross")
  interpolation_path = os.path.join(cross_out, comparisons.INTERPOLATION_FILE)
  interpolation = (flatness_rows.load_json(interpolation_path)
                   if os.path.exists(interpolation_path) else None)
  path = flatness_report.save_study(cross_out, meta["landscape"], runs, interpolation)
  correlations = flatness_rows.load_json(os.path.join(cross_out, "study.json"))["correlations"]
  lines = ["## Flatness and the generalisation gaps (cross-dataset runs)", "",
           f"Full landscape report: [{os.path.relpath(path, out)}]({os.path.relpath(path, out)}) "
           "(landscapes, sharpness per variant, paired sharpness, scatter plots).", ""]
  if correlations.get("within_seed"):
    lines += ["Within seed: each seed's mean removed, so only differences between variants of the "
              "same init and data order count.", ""]
    lines += flatness_report.correlation_lines(correlations)
  else:
    lines.append("(within-seed correlations need >= 2 variants per seed and a degree of freedom)")
  return lines


def write_report(out: str, meta: Mapping[str, Any], runs: Mapping[str, Mapping[str, dict]]) -> str:
  """Writes OUT/study.json, OUT/report.md and OUT/figures/; returns the report's path."""
  fig_dir = os.path.join(out, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  confidence = meta["confidence"]
  lines = ["# The paper's claims in its regime: cross-dataset, fine-tuning, flatness", "",
           f"Command: `{meta['command']}`", ""]
  if meta.get("report_command"):
    lines += [f"Report rebuilt from the stored runs by `{meta['report_command']}`", ""]
  lines += [meta["regime"], "",
            f"Outcomes are the {meta['model']} model's test metrics. Δ absolute = variant − "
            "baseline of the same seed; Δ relative = that over |baseline| (the paper does not "
            f"say which its 'up to 1.8%' / 'up to 3%' are). Intervals: {int(confidence * 100)}% "
            "percentile bootstrap of the mean paired delta (scipy.stats.bootstrap, 9999 "
            "resamples). A verdict of higher or lower needs the interval to exclude 0 and at "
            f"least {significance.MIN_PAIRS} pairs (with fewer, percentile intervals are too narrow to "
            "trust).", ""]
  all_rows = []
  for protocol, protocol_runs in runs.items():
    if not protocol_runs:
      continue
    comparisons.check_pairing(protocol, protocol_runs)
    rows = comparisons.comparisons(protocol, protocol_runs, meta["model"], confidence)
    all_rows += rows
    lines += [f"## {TITLES[protocol]}", ""] + comparison_table(rows, confidence) + [""]
    if rows:
      path = forest.forest_plot(rows, os.path.join(fig_dir, f"{protocol}_deltas.png"),
                                TITLES[protocol].split(" (")[0])
      lines += [f"![{protocol} deltas]({os.path.relpath(path, out)})", ""]
    lines += ["### Pairing", ""] + pairing_lines(protocol, protocol_runs) + [""]
  if runs.get("cross"):
    lines += _flatness_lines(out, meta, runs["cross"])
  with open(os.path.join(out, "study.json"), "w", encoding="utf-8") as f:
    json.dump({"meta": meta, "comparisons": all_rows}, f, indent=1)
  path = os.path.join(out, "report.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return path


def rebuild(out: str, command: str) -> str:
  """Rebuilds the report from OUT/study.json's meta and the stored run records."""
  meta = {**flatness_rows.load_json(os.path.join(out, "study.json"))["meta"],
          "report_command": command}
  order = meta.get("variants", [])
  return write_report(out, meta, {p: comparisons.load_protocol(out, p, order)
                                  for p in meta.get("protocols", comparisons.PAIRED_FIELDS)})
