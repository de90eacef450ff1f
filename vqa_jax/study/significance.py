"""Paired statistics of a variant against its baseline: tests, Holm, power, intervals.

A variant and its baseline are paired by seed (same init, data order and dropout keys, checked by
`fingerprints`). For each seed s, Δ_s = variant_s − baseline_s (absolute) and Δ_s / |baseline_s|
(relative; the paper does not say which its "up to 1.8%" and "up to 3%" are).

* Tests (two-sided): the paired t-test (`scipy.stats.ttest_1samp` of the deltas, = `ttest_rel`)
  and the exact Wilcoxon signed-rank test (`scipy.stats.wilcoxon(method='exact')`, no normality
  assumed; it cannot go below 2 / 2^n, 0.0078 at n = 8).
* Multiplicity: Holm's step-down correction across a family (`holm`), written here (statsmodels is
  not a dependency) and checked against a hand computation in the tests.
* Power: the minimum detectable effect (`minimum_detectable_effect`): the smallest true mean
  paired delta that a two-sided paired t-test at level α detects with probability `power`, for the
  design's n and the observed standard deviation of the deltas. It is solved on the noncentral t
  distribution (`scipy.stats.nct`), not the normal approximation.
* Intervals are descriptions, not verdicts: the t interval of the mean delta, and the BCa bootstrap
  interval (`scipy.stats.bootstrap(method='BCa')`) beside it. The former rule "a percentile
  interval over >= 5 pairs excluding 0" is gone: it covered about 84% at n = 5.
"""

from typing import Mapping, Sequence

import numpy as np
from scipy import optimize
from scipy import stats

ALPHA = 0.05
POWER = 0.8
CONFIDENCE = 0.95
RESAMPLES = 9999


def _constant(values: np.ndarray) -> bool:
  """Whether all values are equal up to float rounding (1e-12)."""
  return bool(np.ptp(values) <= 1e-12)


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
  """The Student-t interval of the mean; (nan, nan) below 2 values, the value if constant."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    return float("nan"), float("nan")
  sem = values.std(ddof=1) / np.sqrt(values.size)
  half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * sem
  return float(values.mean() - half), float(values.mean() + half)


def bca_interval(values, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
  """BCa-bootstrap interval of the mean; (nan, nan) below 3 values, the value if constant."""
  values = np.asarray(values, np.float64)
  if values.size < 3:
    return float("nan"), float("nan")
  if _constant(values):
    return float(values.mean()), float(values.mean())
  result = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                           method="BCa", vectorized=True, random_state=seed)
  return float(result.confidence_interval.low), float(result.confidence_interval.high)


def t_test(deltas) -> float:
  """Two-sided p of the paired t-test on the deltas (nan below 2 pairs or for constant deltas)."""
  deltas = np.asarray(deltas, np.float64)
  if deltas.size < 2 or _constant(deltas):
    return float("nan")
  return float(stats.ttest_1samp(deltas, 0.0).pvalue)


def wilcoxon_exact(deltas) -> float:
  """Two-sided p of the exact Wilcoxon signed-rank test (nan below 2 pairs or all deltas 0).

  Zero deltas are dropped first (Wilcoxon's own treatment, zero_method='wilcox').
  """
  deltas = np.asarray(deltas, np.float64)
  nonzero = deltas[np.abs(deltas) > 1e-12]
  if nonzero.size < 2:
    return float("nan")
  return float(stats.wilcoxon(nonzero, method="exact").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
  """Holm's step-down adjusted p-values, in the input order (nan stays nan, outside the family).

  Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max_{j <= i} min(1, (m − j + 1) p_(j)).
  """
  p = np.asarray(pvalues, np.float64)
  finite = np.flatnonzero(np.isfinite(p))
  adjusted = np.full(p.shape, np.nan)
  m = finite.size
  order = finite[np.argsort(p[finite], kind="stable")]
  running = 0.0
  for rank, index in enumerate(order):
    running = max(running, min(1.0, (m - rank) * p[index]))
    adjusted[index] = running
  return adjusted.tolist()


def t_test_power(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
  """Power of the two-sided paired t-test at level α for a true mean delta `effect`."""
  df = n - 1
  crit = stats.t.ppf(1 - alpha / 2, df)
  nc = effect / (sd / np.sqrt(n))
  # scipy's nct returns nan for a tail that underflows (large |nc|): that tail is 0.
  upper, lower = stats.nct.sf(crit, df, nc), stats.nct.cdf(-crit, df, nc)
  return float(np.nan_to_num(upper) + np.nan_to_num(lower))


def minimum_detectable_effect(sd: float, n: int, alpha: float = ALPHA,
                              power: float = POWER) -> float:
  """The smallest |mean delta| the two-sided paired t-test detects with `power` (noncentral t).

  nan below 2 pairs or without a positive sd.
  """
  if n < 2 or not np.isfinite(sd) or sd <= 0:
    return float("nan")
  sem = sd / np.sqrt(n)
  upper = (stats.t.ppf(1 - alpha / 2, n - 1) + 10.0) * sem  # power ≈ 1 there
  return float(optimize.brentq(lambda e: t_test_power(e, sd, n, alpha) - power, 0.0, upper,
                               xtol=1e-12 * max(sem, 1e-300)))


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                 most: int = 1000) -> int:
  """The fewest pairs whose paired t-test detects `effect` with `power` (given the deltas' sd)."""
  for n in range(2, most + 1):
    if t_test_power(effect, sd, n, alpha) >= power:
      return n
  raise ValueError(f"more than {most} pairs needed for effect {effect} at sd {sd}")


def describe(values, confidence: float = CONFIDENCE, seed: int = 0) -> dict[str, float]:
  """{'mean', 'std' (ddof 1), 't_low', 't_high', 'bca_low', 'bca_high'} of paired deltas."""
  values = np.asarray(values, np.float64)
  t_low, t_high = t_interval(values, confidence)
  bca_low, bca_high = bca_interval(values, confidence, seed=seed)
  std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
  return {"mean": float(values.mean()), "std": std, "t_low": t_low, "t_high": t_high,
          "bca_low": bca_low, "bca_high": bca_high}


def paired(baseline: Mapping[int, float], variant: Mapping[int, float],
           confidence: float = CONFIDENCE, alpha: float = ALPHA, power: float = POWER) -> dict:
  """Paired deltas of `variant` against `baseline` over their common seeds, tested.

  Returns {'seeds', 'n', 'baseline_mean', 'variant_mean', 'delta' and 'relative' (`describe`),
  't_p', 'wilcoxon_p' (two-sided, uncorrected), 'mde' (absolute, at `power` and `alpha`)}.
  """
  seeds = sorted(set(baseline) & set(variant))
  if not seeds:
    raise ValueError(f"no common seeds: baseline {sorted(baseline)}, variant {sorted(variant)}")
  b = np.array([baseline[s] for s in seeds], np.float64)
  v = np.array([variant[s] for s in seeds], np.float64)
  delta = describe(v - b, confidence)
  if np.all(b != 0):
    relative = describe((v - b) / np.abs(b), confidence)
  else:  # a zero baseline has no relative change
    relative = dict.fromkeys(delta, float("nan"))
  return {"seeds": seeds, "n": len(seeds), "baseline_mean": float(b.mean()),
          "variant_mean": float(v.mean()), "delta": delta, "relative": relative,
          "t_p": t_test(v - b), "wilcoxon_p": wilcoxon_exact(v - b),
          "mde": minimum_detectable_effect(delta["std"], len(seeds), alpha, power)}


def correlation_mde(n: int, dof: int | None = None, alpha: float = ALPHA,
                    power: float = POWER) -> float:
  """The smallest |Pearson r| detectable with `power` (Fisher z approximation).

  Fisher's z has variance 1 / (n − 3); for a correlation with `dof` t-test degrees of freedom
  (n − 2 for a plain one, n − groups − 1 within groups) that is 1 / (dof − 1).
  """
  spread = (dof - 1) if dof is not None else (n - 3)
  if spread < 1:
    return float("nan")
  z = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / np.sqrt(spread)
  return float(np.tanh(z))
