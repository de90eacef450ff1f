"""Generalization gaps of checkpoints and their correlation with sharpness (scipy.stats).

Gap conventions, both positive when the model does worse off its training data:
  srcc_gap = SRCC(train) − SRCC(test)      (train metric minus test metric)
  loss_gap = loss(test) − loss(train)      (the sign flipped so that a larger gap is worse)
"""

from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats


def generalization_gap(train: Mapping[str, float], test: Mapping[str, float]) -> dict[str, float]:
  """{'srcc_gap', 'loss_gap'} of one checkpoint from its train and test {'srcc', 'loss'}."""
  return {"srcc_gap": float(train["srcc"] - test["srcc"]),
          "loss_gap": float(test["loss"] - train["loss"])}


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
  """Pearson r and Spearman ρ of x and y with their two-sided p-values, and n."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1 or x.size < 3:
    raise ValueError(f"need two 1-D series of the same length >= 3, got {x.shape} and {y.shape}")
  pearson = stats.pearsonr(x, y)
  spearman = stats.spearmanr(x, y)
  return {"pearson_r": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
          "spearman_rho": float(spearman.statistic), "spearman_p": float(spearman.pvalue),
          "n": int(x.size)}


def correlation_table(rows: Sequence[Mapping[str, Any]], measures: Sequence[str],
                      gaps: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
  """{measure: {gap: correlation}} across `rows` (one dict per checkpoint holding both keys)."""
  for i, row in enumerate(rows):
    missing = [k for k in (*measures, *gaps) if k not in row]
    if missing:
      raise KeyError(f"checkpoint row {i} ({row.get('name', '?')}) lacks {missing}")
  return {m: {g: correlation([r[m] for r in rows], [r[g] for r in rows]) for g in gaps}
          for m in measures}
