"""The study's records on disk and the paired comparisons derived from them.

OUT/<protocol>/runs/<variant>_s<seed>.json holds one run: for 'cross' a landscape-study run record
(trainer results, fixed-set metrics, landscape, sharpness) plus `pairing`; for 'finetune' the
`finetune.finetune` result plus `pairing`. `outcomes` reads each record's test metrics of one model,
`paired_comparisons` pairs every variant with the baseline of the same seed (`significance.paired`). Nothing is
trained here, so a report can be rebuilt from stored records.
"""

import json
import os
from typing import Any, Mapping, Sequence

from vqa_jax.training import finetune
from vqa_jax.study import flatness_rows
from vqa_jax.study import significance
from vqa_jax.study import fingerprints

METRICS = ("srcc", "plcc")
# OUT/cross/<this>: the training loss from the first seed's baseline to its first AWP variant.
INTERPOLATION_FILE = "interpolation.json"
BASELINE = "baseline"
# Fields each protocol's pairs must share: fine-tuning starts from each variant's own model.
PAIRED_FIELDS = {"cross": fingerprints.FIELDS, "finetune": ("batches", "rng")}


def record_path(out: str, protocol: str, name: str) -> str:
  """Where a run record of `protocol` is stored."""
  return os.path.join(out, protocol, "runs", f"{name}.json")


def save_record(out: str, protocol: str, record: dict) -> None:
  """Writes a run record (its folder made first)."""
  path = record_path(out, protocol, record["name"])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(record, f)


def load_protocol(out: str, protocol: str, variant_order: Sequence[str] = ()) -> dict[str, dict]:
  """{name: record} of a protocol's stored runs ({} when it has none)."""
  if not os.path.isdir(os.path.join(out, protocol, "runs")):
    return {}
  if protocol == "cross":
    return flatness_rows.load_runs(os.path.join(out, protocol), variant_order)
  runs = [flatness_rows.load_json(os.path.join(out, protocol, "runs", n))
          for n in sorted(os.listdir(os.path.join(out, protocol, "runs"))) if n.endswith(".json")]
  order = {v: i for i, v in enumerate(variant_order)}
  runs.sort(key=lambda r: (order.get(r["variant"], len(order)), r["variant"], r["seed"]))
  return {r["name"]: r for r in runs}


def outcomes(protocol: str, record: Mapping[str, Any], model: str) -> dict[str, float]:
  """{'<split>_<metric>': value} of one run's test splits for `model` ('raw' or 'ema')."""
  if protocol == "cross":
    results = record["trainer_results"]
    return {f"{split}_{m}": results[split][model][m] for split in results for m in METRICS}
  final = record["result"]["final"][model]
  return {f"{finetune.TEST_SPLIT}_{m}": final[m]["mean"] for m in METRICS}


def paired_comparisons(protocol: str, runs: Mapping[str, Mapping[str, Any]],
                       model: str) -> list[dict]:
  """One paired comparison per (variant other than the baseline, outcome) of `model`'s metrics."""
  by_variant: dict[str, dict[int, dict[str, float]]] = {}
  for record in runs.values():
    by_variant.setdefault(record["variant"], {})[record["seed"]] = outcomes(protocol, record, model)
  base = by_variant.get(BASELINE)
  if not base:
    return []
  rows = []
  for variant, by_seed in by_variant.items():
    if variant == BASELINE:
      continue
    for outcome in next(iter(base.values())):
      stats = significance.paired({s: v[outcome] for s, v in base.items()},
                                  {s: v[outcome] for s, v in by_seed.items()})
      rows.append({"protocol": protocol, "model": model, "variant": variant, "outcome": outcome,
                   **stats})
  return rows


def check_pairing(protocol: str, runs: Mapping[str, Mapping[str, Any]]) -> None:
  """Raises ValueError unless every run shares its protocol's paired fields with its baseline."""
  prints = {(r["variant"], r["seed"]): r["pairing"] for r in runs.values()}
  fingerprints.check_pairs(prints, BASELINE, PAIRED_FIELDS[protocol])
