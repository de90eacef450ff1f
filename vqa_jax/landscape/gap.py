"""Generalization gaps of checkpoints and their correlation with sharpness (scipy.stats).

Gap convention: train metric minus test metric, for every metric:
  srcc_gap = SRCC(train) − SRCC(test)   positive when the model ranks its training videos better;
  loss_gap = loss(train) − loss(test)   NEGATIVE when the model fits its training videos better
                                        (overfitting makes the loss gap negative).

Correlations come in two kinds. Pooled: Pearson / Spearman over all checkpoints. Within-group
(e.g. within seed): the group means are removed first, so only differences between checkpoints of
the same group (seed) count; a pooled correlation that comes from differences between seeds
vanishes here.
"""

from typing import Any, Hashable, Mapping, Sequence

import numpy as np
from scipy import stats


def generalization_gap(train: Mapping[str, float], test: Mapping[str, float]) -> dict[str, float]:
  """{'srcc_gap', 'loss_gap'}: train minus test of the checkpoint's {'srcc', 'loss'}."""
  return {"srcc_gap": float(train["srcc"] - test["srcc"]),
          "loss_gap": float(train["loss"] - test["loss"])}


def _series(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1 or x.size < 3:
    raise ValueError(f"need two 1-D series of the same length >= 3, got {x.shape} and {y.shape}")
  return x, y


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
  """Pearson r and Spearman ρ of x and y with their two-sided p-values, and n."""
  x, y = _series(x, y)
  pearson = stats.pearsonr(x, y)
  spearman = stats.spearmanr(x, y)
  return {"pearson_r": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
          "spearman_rho": float(spearman.statistic), "spearman_p": float(spearman.pvalue),
          "n": int(x.size)}


def _demeaned(values: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
  out = values.copy()
  for index in members:
    out[index] -= values[index].mean()
  return out


def _ranked_within(values: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
  out = np.empty_like(values)
  for index in members:
    out[index] = stats.rankdata(values[index])
  return out


def _r_and_p(a: np.ndarray, b: np.ndarray, dof: int) -> tuple[float, float]:
  """Correlation of two centred series and its two-sided t-test p-value with `dof` dof."""
  r = float(np.clip(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)), -1.0, 1.0))
  if abs(r) == 1.0:
    return r, 0.0
  t = r * np.sqrt(dof / (1.0 - r * r))
  return r, float(2 * stats.t.sf(abs(t), dof))


def within_group_correlation(x: Sequence[float], y: Sequence[float],
                             groups: Sequence[Hashable]) -> dict[str, float]:
  """Pearson r and Spearman ρ of x and y within groups, with p-values, n and the group count.

  Pearson: of x and y minus their group means (the fixed-effects or partial correlation given the
  group). Spearman: the same on ranks taken within each group (ties averaged); with equal groups
  and no ties it is the mean of the per-group Spearman ρ. Removing g group means leaves
  dof = n − g − 1 degrees of freedom for the t-test (scipy's pooled test would use n − 2 and
  overstate the evidence). Every group needs >= 2 members and dof >= 1.
  """
  x, y = _series(x, y)
  groups = list(groups)
  if len(groups) != x.size:
    raise ValueError(f"{len(groups)} group labels for {x.size} points")
  labels = list(dict.fromkeys(groups))
  members = [np.flatnonzero([g == label for g in groups]) for label in labels]
  small = [label for label, index in zip(labels, members) if index.size < 2]
  if small:
    raise ValueError(f"groups {small} have fewer than 2 members: no within-group variation")
  dof = x.size - len(labels) - 1
  if dof < 1:
    raise ValueError(f"{x.size} points in {len(labels)} groups leave no degree of freedom")
  if any(all(np.ptp(v[i]) == 0 for i in members) for v in (x, y)):
    nan = float("nan")  # constant within every group: undefined, as scipy's pooled r would be
    return {"pearson_r": nan, "pearson_p": nan, "spearman_rho": nan, "spearman_p": nan,
            "n": int(x.size), "groups": len(labels), "dof": dof}
  pearson_r, pearson_p = _r_and_p(_demeaned(x, members), _demeaned(y, members), dof)
  spearman_rho, spearman_p = _r_and_p(_demeaned(_ranked_within(x, members), members),
                                      _demeaned(_ranked_within(y, members), members), dof)
  return {"pearson_r": pearson_r, "pearson_p": pearson_p, "spearman_rho": spearman_rho,
          "spearman_p": spearman_p, "n": int(x.size), "groups": len(labels), "dof": dof}


def correlation_table(rows: Sequence[Mapping[str, Any]], measures: Sequence[str],
                      gaps: Sequence[str], within: str | None = None,
                      ) -> dict[str, dict[str, dict[str, float]]]:
  """{measure: {gap: correlation}} across `rows` (one dict per checkpoint holding both keys).

  With `within` (a row key such as 'seed') the correlations are within the groups of that key
  (`within_group_correlation`); otherwise pooled over all rows (`correlation`).
  """
  keys = (*measures, *gaps) + ((within,) if within else ())
  for i, row in enumerate(rows):
    missing = [k for k in keys if k not in row]
    if missing:
      raise KeyError(f"checkpoint row {i} ({row.get('name', '?')}) lacks {missing}")
  if within:
    groups = [r[within] for r in rows]
    corr = lambda x, y: within_group_correlation(x, y, groups)
  else:
    corr = correlation
  return {m: {g: corr([r[m] for r in rows], [r[g] for r in rows]) for g in gaps}
          for m in measures}
