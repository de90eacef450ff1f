"""The final results: fixed-width tables and one JSON line with the same numbers."""

import dataclasses
import json

from vqa_jax.evaluation.metrics import ALL_METRIC_NAMES

Results = dict[str, dict[str, dict[str, float]]]  # eval set -> model ('raw'|'ema') -> metric -> value


@dataclasses.dataclass
class RunSummary:
  """What a run reports: the final results and, with a validation split, the selected ones."""

  step: int
  final: Results
  selected: dict | None = None  # {"step", "model", "criterion", "validation", "results"}
  reference_best: Results | None = None


COLUMN_TITLES = {"srcc": "SRCC", "plcc": "PLCC", "krcc": "KRCC", "rmse": "RMSE",
                 "plcc_logistic": "PLCC-L4", "rmse_logistic": "RMSE-L4"}
BEST_PER_METRIC_LABEL = "reference-style best (per-metric max over evaluations, optimistic)"


def metric_columns(results: Results) -> list[str]:
  """The metrics present in `results`, in ALL_METRIC_NAMES order."""
  present = {name for by_model in results.values() for values in by_model.values()
             for name in values}
  return [name for name in ALL_METRIC_NAMES if name in present]


def results_table(results: Results, title: str = "") -> str:
  """A table with one row per (eval set, model): SRCC, PLCC, KRCC, RMSE (and the logistic ones)."""
  columns = metric_columns(results)
  width = max([len("eval set")] + [len(name) for name in results])
  header = f"{'eval set':<{width}}  model  " + "  ".join(
      f"{COLUMN_TITLES[m]:>7}" for m in columns)
  lines = ([title] if title else []) + [header, "-" * len(header)]
  for name, by_model in results.items():
    for model, values in by_model.items():
      cells = "  ".join(f"{values.get(m, float('nan')):>7.4f}" for m in columns)
      lines.append(f"{name:<{width}}  {model:<5}  {cells}")
  return "\n".join(lines)


def results_json(results: Results, step: int, **extra) -> str:
  """One JSON line: {"step": ..., "results": {set: {model: {metric: value}}}, **extra}."""
  return json.dumps({"step": step, "results": results, **extra}, sort_keys=False)


def print_summary(summary: RunSummary) -> None:
  """Prints the tables (final, selected, reference-style best) and one JSON line."""
  extra = {}
  if summary.selected is not None:
    sel = summary.selected
    print(results_table(sel["results"], f"selected checkpoint: step {sel['step']}, model "
                        f"{sel['model']}, best {sel['criterion']}"), flush=True)
    extra["selected"] = sel
  if summary.reference_best is not None:
    print(results_table(summary.reference_best, BEST_PER_METRIC_LABEL), flush=True)
    extra["reference_best"] = summary.reference_best
  title = f"final checkpoint: step {summary.step}" if extra else ""
  print(results_table(summary.final, title), flush=True)
  print(results_json(summary.final, summary.step, **extra), flush=True)
