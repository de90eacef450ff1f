"""Paired statistics of a variant against its baseline: deltas per seed, bootstrap CIs, a t-test.

A variant and its baseline are paired by seed (same init, data order and dropout keys, checked by
`pairing`). For each seed s, Δ_s = variant_s − baseline_s (absolute) and Δ_s / |baseline_s|
(relative; the paper does not say which of the two its "up to 1.8%" and "up to 3%" are). The
interval of the mean delta is the percentile bootstrap of `scipy.stats.bootstrap` (paired by
construction: the deltas are resampled), and the paired t-test is `scipy.stats.ttest_rel`.
"""

from typing import Mapping

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
MIN_PAIRS = 5  # fewer pairs: the bootstrap interval is too narrow to support a claim


def _constant(values: np.ndarray) -> bool:
  """Whether all values are equal up to float rounding (1e-12)."""
  return bool(np.ptp(values) <= 1e-12)


def bootstrap_ci(values, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
  """Percentile-bootstrap interval of the mean of `values`; (nan, nan) for fewer than 2 values."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    return float("nan"), float("nan")
  if _constant(values):  # a degenerate resample distribution: the interval is the value
    return float(values.mean()), float(values.mean())
  result = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                           method="percentile", vectorized=True, random_state=seed)
  return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summary(values, confidence: float = CONFIDENCE, seed: int = 0) -> dict[str, float]:
  """{'mean', 'std' (ddof 1), 'ci_low', 'ci_high'} of paired deltas."""
  values = np.asarray(values, np.float64)
  low, high = bootstrap_ci(values, confidence, seed=seed)
  std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
  return {"mean": float(values.mean()), "std": std, "ci_low": low, "ci_high": high}


def paired(baseline: Mapping[int, float], variant: Mapping[int, float],
           confidence: float = CONFIDENCE, seed: int = 0) -> dict:
  """Absolute and relative deltas of `variant` against `baseline` over their common seeds.

  Returns {'seeds', 'n', 'baseline_mean', 'variant_mean', 'delta', 'relative' (summaries),
  't_pvalue' (paired t-test, nan below 2 pairs or for constant deltas), 'excludes_zero'
  (the absolute interval lies strictly on one side of 0)}.
  """
  seeds = sorted(set(baseline) & set(variant))
  if not seeds:
    raise ValueError(f"no common seeds: baseline {sorted(baseline)}, variant {sorted(variant)}")
  b = np.array([baseline[s] for s in seeds], np.float64)
  v = np.array([variant[s] for s in seeds], np.float64)
  delta = summary(v - b, confidence, seed)
  if np.all(b != 0):
    relative = summary((v - b) / np.abs(b), confidence, seed)
  else:  # a zero baseline has no relative change
    relative = dict.fromkeys(("mean", "std", "ci_low", "ci_high"), float("nan"))
  p = float("nan")
  if len(seeds) > 1 and not _constant(v - b):
    p = float(stats.ttest_rel(v, b).pvalue)
  excludes = bool(delta["ci_low"] > 0 or delta["ci_high"] < 0)
  return {"seeds": seeds, "n": len(seeds), "baseline_mean": float(b.mean()),
          "variant_mean": float(v.mean()),
          "delta": delta, "relative": relative, "t_pvalue": p, "excludes_zero": excludes}
