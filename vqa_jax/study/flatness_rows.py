"""The study's run records on disk and what is derived from them: gaps, rows, correlations.

A run record (OUT/runs/<variant>_s<seed>.json) is `analysis.Analyzer.checkpoint`'s dict plus
name, variant, seed, trainer_results and seconds. Everything here is recomputed from the stored
metrics and landscapes, so a report can be rebuilt after a change of definition without
retraining (`flatness_report.rebuild`). No training and no TensorFlow here.
"""

import glob
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_jax.landscape import analysis
from vqa_jax.landscape import gap as gap_lib

# loss_increase: at α_s (evaluated directly); loss_increase_line: at α = ±LINE_ALPHA, read off the
# 1-D random lines.
MEASURES = analysis.SHARPNESS_MEASURES + ("loss_increase_line",)
LINE_ALPHA = 0.5
GAPS = ("srcc_gap", "loss_gap", "cross_srcc_gap", "cross_loss_gap")
LANDSCAPE_SET = "train"
GROUP_KEY = "seed"  # within-seed correlations remove each seed's mean


def gaps(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
  """In-domain (train − test) and cross-domain (train − cross) gaps of one checkpoint."""
  in_domain = gap_lib.generalization_gap(metrics[LANDSCAPE_SET], metrics["test"])
  cross = gap_lib.generalization_gap(metrics[LANDSCAPE_SET], metrics["cross"])
  return {**in_domain, **{f"cross_{k}": v for k, v in cross.items()}}


def check_line_grid(config: analysis.AnalysisConfig) -> None:
  """Raises, before anything trains, unless ±LINE_ALPHA lies on the 1-D lines' α grid."""
  grid = config.alphas
  if not all(np.any(np.abs(grid - a) < 1e-6) for a in (-LINE_ALPHA, LINE_ALPHA)):
    raise ValueError(
        f"line_points={config.line_points} puts α = ±{LINE_ALPHA} off the landscape grid "
        f"{np.round(grid, 4).tolist()}, so the report could not read loss_increase_line; take "
        f"line_points = 4k + 1 (5, 9, 21, ...) with alpha_max {config.alpha_max}")


def study_row(name: str, record: dict) -> dict:
  """One correlation row: the run's sharpness measures, gaps, variant and seed.

  Recomputes the record's `gaps` from its metrics and adds the derived `loss_increase_line`
  (from the stored 1-D lines) to its sharpness, so stored records never go stale.
  """
  record["gaps"] = gaps(record["metrics"])
  record["sharpness"]["loss_increase_line"] = analysis.line_increase(record["landscape"],
                                                                     LINE_ALPHA)
  return {"name": name, "variant": record["variant"], "seed": record["seed"],
          **record["sharpness"], **record["gaps"]}


def can_correlate_within(rows: Sequence[Mapping[str, Any]], key: str = GROUP_KEY) -> bool:
  """Whether every group of `key` has >= 2 rows and a degree of freedom is left."""
  sizes: dict[Any, int] = {}
  for row in rows:
    sizes[row[key]] = sizes.get(row[key], 0) + 1
  return bool(sizes) and min(sizes.values()) >= 2 and len(rows) - len(sizes) - 1 >= 1


def correlations(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
  """{'pooled': table, 'within_seed': table} of every measure with every gap (empty if too few)."""
  out = {}
  if len(rows) >= 3:
    out["pooled"] = gap_lib.correlation_table(rows, MEASURES, GAPS)
  if can_correlate_within(rows):
    out["within_seed"] = gap_lib.correlation_table(rows, MEASURES, GAPS, within=GROUP_KEY)
  return out


def load_json(path: str) -> Any:
  """A JSON file's content; a missing or malformed file is an error naming it."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"{path}: not found") from e
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e


def load_runs(out: str, variant_order: Sequence[str] = ()) -> dict[str, dict]:
  """{name: record} of OUT/runs/*.json, ordered by variant (in `variant_order` first), then seed."""
  records = {}
  for path in glob.glob(os.path.join(out, "runs", "*.json")):
    record = load_json(path)
    missing = [k for k in ("name", "variant", "seed", "metrics", "sharpness", "landscape")
               if k not in record]
    if missing:
      raise KeyError(f"{path}: run record lacks {missing}")
    records[record["name"]] = record
  if not records:
    raise FileNotFoundError(f"{os.path.join(out, 'runs')}: no run records (*.json)")
  order = {v: i for i, v in enumerate(variant_order)}
  key = lambda r: (order.get(r["variant"], len(order)), r["variant"], r["seed"])
  return {r["name"]: r for r in sorted(records.values(), key=key)}
