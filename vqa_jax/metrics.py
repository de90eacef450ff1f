"""Host-side quality metrics over a whole evaluation set: SRCC, PLCC, KRCC and RMSE (paper §7.5)."""

import numpy as np
from scipy import stats

METRIC_NAMES = ("srcc", "plcc", "krcc", "rmse")


def rescale(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
  """Maps predictions linearly to the labels' mean and population std (the reference `rescale`)."""
  pred = np.asarray(pred, np.float64)
  label = np.asarray(label, np.float64)
  std = pred.std()
  z = (pred - pred.mean()) / std if std > 0 else np.zeros_like(pred)
  return z * label.std() + label.mean()


def quality_metrics(pred, label) -> dict[str, float]:
  """SRCC, PLCC, KRCC (tau-b) and RMSE after the linear rescale, as the reference computes them."""
  pred = np.asarray(pred, np.float64).reshape(-1)
  label = np.asarray(label, np.float64).reshape(-1)
  if pred.shape != label.shape or pred.size < 3:
    raise ValueError(f"need >= 3 matching predictions and labels, got {pred.shape} and {label.shape}")
  if not np.all(np.isfinite(pred)):
    raise ValueError(f"{int(np.sum(~np.isfinite(pred)))} predictions are not finite")
  scaled = rescale(pred, label)
  return {
      "srcc": float(stats.spearmanr(pred, label).statistic),
      "plcc": float(stats.pearsonr(scaled, label).statistic),
      "krcc": float(stats.kendalltau(pred, label).statistic),
      "rmse": float(np.sqrt(np.mean((scaled - label) ** 2))),
  }
