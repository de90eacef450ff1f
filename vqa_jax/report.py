"""The final results: a fixed-width table and one JSON line with the same numbers."""

import json

from vqa_jax.metrics import METRIC_NAMES

Results = dict[str, dict[str, dict[str, float]]]  # eval set -> model ('raw'|'ema') -> metric -> value


def results_table(results: Results) -> str:
  """A table with one row per (eval set, model) and columns SRCC, PLCC, KRCC, RMSE."""
  width = max([len("eval set")] + [len(name) for name in results])
  header = f"{'eval set':<{width}}  model  " + "  ".join(f"{m.upper():>7}" for m in METRIC_NAMES)
  lines = [header, "-" * len(header)]
  for name, by_model in results.items():
    for model, values in by_model.items():
      cells = "  ".join(f"{values[m]:>7.4f}" for m in METRIC_NAMES)
      lines.append(f"{name:<{width}}  {model:<5}  {cells}")
  return "\n".join(lines)


def results_json(results: Results, step: int) -> str:
  """One JSON line: {"step": ..., "results": {set: {model: {metric: value}}}}."""
  return json.dumps({"step": step, "results": results}, sort_keys=False)
