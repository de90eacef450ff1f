"""Random splits (validation hold-out, fine-tuning 80/20) and model selection over evaluations.

Selection criterion: validation SRCC + PLCC (PLCC after the linear rescale) of one model ('raw' or
'ema', `config.eval.select_model`), the sum the reference uses to decide its `_best` checkpoints
(paper §7.4). The reference's per-metric maximum over evaluations (§7.5) is `best_per_metric`;
it mixes evaluations and is optimistic, so it is reported only on request and labelled as such.
"""

import math
import random
from typing import Sequence, TypeVar

from vqa_jax.evaluation import metrics

T = TypeVar("T")
SELECTION_CRITERION = "srcc+plcc"


def shuffled_split(items: Sequence[T], first_fraction: float, seed: int) -> tuple[list[T], list[T]]:
  """(first ⌊fraction·N⌋, rest) of `items` after random.Random(seed).shuffle (paper §7.6).

  With seed 42 and fraction 0.8 this is the reference fine-tuning split: `random.seed(42);
  random.shuffle(labels)`, first 80% for training.
  """
  if not 0 < first_fraction < 1:
    raise ValueError(f"split fraction must be in (0, 1), got {first_fraction}")
  order = list(items)
  random.Random(seed).shuffle(order)
  cut = math.floor(first_fraction * len(order))
  if cut == 0 or cut == len(order):
    raise ValueError(f"a {first_fraction} split of {len(order)} items leaves one side empty")
  return order[:cut], order[cut:]


def selection_score(split_metrics: dict[str, float]) -> float:
  """SRCC + PLCC of one evaluation (the selection criterion); -inf when undefined (NaN)."""
  score = float(split_metrics["srcc"] + split_metrics["plcc"])
  return score if score == score else float("-inf")


def selected_evaluation(evaluations: Sequence[dict], val_split: str, model: str,
                        test_splits: Sequence[str]) -> dict | None:
  """The evaluation with the best `val_split` SRCC + PLCC of `model` (the first if tied).

  Returns {"step", "model", "criterion", "validation": metrics, "results": {split: {model: ...}}}
  for the test splits, or None without a validation split or evaluations.
  """
  if not val_split or not evaluations:
    return None
  best = max(evaluations, key=lambda r: selection_score(r["results"][val_split][model]))
  return {"step": best["step"], "model": model, "criterion": f"{val_split} {SELECTION_CRITERION}",
          "validation": best["results"][val_split][model],
          "results": {name: {model: best["results"][name][model]} for name in test_splits}}


def best_per_metric(evaluations: Sequence[dict]) -> dict:
  """Reference-style best: per split, model and metric the best value over all evaluations.

  `evaluations` are records {"step": s, "results": {split: {model: {metric: value}}}}; the result
  is {split: {model: {metric: value}}} with max for correlations and min for RMSEs, each possibly
  from a different evaluation ("optimistic").
  """
  best: dict = {}
  for record in evaluations:
    for split, by_model in record["results"].items():
      for model, values in by_model.items():
        slot = best.setdefault(split, {}).setdefault(model, {})
        for name, value in values.items():
          if value != value:  # NaN never wins
            continue
          better = min if name in metrics.LOWER_IS_BETTER else max
          slot[name] = value if name not in slot else better(slot[name], value)
  return best
