"""Host-side quality metrics over a whole evaluation set (paper §7.5).

SRCC, PLCC, KRCC and RMSE after the reference's linear rescale (FAST-VQA, SAMA), and side by side
PLCC and RMSE after SimpleVQA's 4-parameter logistic fit (`plcc_logistic`, `rmse_logistic`).
"""

from absl import logging
import numpy as np
from scipy import optimize
from scipy import stats

METRIC_NAMES = ("srcc", "plcc", "krcc", "rmse")
LOGISTIC_METRIC_NAMES = ("plcc_logistic", "rmse_logistic")
ALL_METRIC_NAMES = METRIC_NAMES + LOGISTIC_METRIC_NAMES
# Metrics where smaller is better (the rest: larger is better).
LOWER_IS_BETTER = ("rmse", "rmse_logistic")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson's r by its definition with numpy's pairwise sums; NaN when either input is constant.

  Not scipy.stats.pearsonr: its norms go through BLAS, whose threads split long sums (tens of
  thousands of videos) differently with the thread count, so the last bits changed per machine.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  xm, ym = x - x.mean(), y - y.mean()
  scale = np.sqrt(np.sum(xm * xm)) * np.sqrt(np.sum(ym * ym))
  return float(np.clip(np.sum(xm * ym) / scale, -1.0, 1.0)) if scale > 0 else float("nan")


def rescale(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
  """Maps predictions linearly to the labels' mean and population std (the reference `rescale`)."""
  pred = np.asarray(pred, np.float64)
  label = np.asarray(label, np.float64)
  std = pred.std()
  z = (pred - pred.mean()) / std if std > 0 else np.zeros_like(pred)
  return z * label.std() + label.mean()


def _logistic_parts(x: np.ndarray, b3: float, b4: float) -> tuple[np.ndarray, np.ndarray]:
  """(s, where z is not clipped) of logistic_4: s = 1 / (1 + exp(z)), z = clip(-(x - b3) / |b4|)."""
  raw = -(np.asarray(x, np.float64) - b3) / np.abs(b4)
  z = np.clip(raw, -500.0, 500.0)
  return 1.0 / (1.0 + np.exp(z)), np.abs(raw) < 500.0


def logistic_4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
  """SimpleVQA's f(x) = β2 + (β1 − β2) / (1 + exp(−(x − β3) / |β4|)) (paper §7.5)."""
  s, _ = _logistic_parts(x, b3, b4)
  return b2 + (b1 - b2) * s


def logistic_4_jacobian(x: np.ndarray, b1: float, b2: float, b3: float,
                        b4: float) -> np.ndarray:
  """(len(x), 4) derivatives of logistic_4 by (β1, β2, β3, β4); 0 in β3, β4 where z is clipped."""
  x = np.asarray(x, np.float64)
  s, inside = _logistic_parts(x, b3, b4)
  # df/dz = -(b1 - b2) s (1 - s); dz/db3 = 1 / |b4|; dz/db4 = sign(b4) (x - b3) / b4^2.
  df_dz = np.where(inside, -(b1 - b2) * s * (1.0 - s), 0.0)
  return np.stack([s, 1.0 - s, df_dz / np.abs(b4), df_dz * np.sign(b4) * (x - b3) / b4 ** 2],
                  axis=1)


# The fit's solver path, fixed so that every process takes the same one (see fit_logistic); the
# tolerances are leastsq's (curve_fit's former solver): a near-linear relation, whose optimum lies
# at β4 -> infinity, then stops on the relative reduction as it did.
FIT_SOLVER = {"method": "trf", "x_scale": "jac", "ftol": 1.49012e-8, "xtol": 1.49012e-8,
              "gtol": 1.49012e-8, "max_nfev": 10_000}


def _least_squares_logistic(x: np.ndarray, label: np.ndarray) -> np.ndarray | None:
  """β of logistic_4 fitted to (x, label) from SimpleVQA's start [max y, min y, mean x, 0.5]."""
  start = np.array([label.max(), label.min(), x.mean(), 0.5])
  try:
    with np.errstate(all="ignore"):
      fit = optimize.least_squares(lambda beta: logistic_4(x, *beta) - label, start,
                                   jac=lambda beta: logistic_4_jacobian(x, *beta), **FIT_SOLVER)
  except (ValueError, np.linalg.LinAlgError):
    return None
  converged = fit.status > 0 and np.all(np.isfinite(fit.x)) and fit.x[3] != 0
  return fit.x if converged else None


def fit_logistic(pred, label) -> np.ndarray | None:
  """β of the least-squares logistic_4 fit from SimpleVQA's start [max y, min y, mean x, 0.5].

  Predictions on a scale the start cannot reach are retried standardised (the fitted curve is the
  same family: β3, β4 absorb the affine map). None if both fits fail to converge.

  The same inputs give the same bits in every process: the pairs are put in one order (sorted by
  prediction, then label), and the solver is scipy's trust-region-reflective `least_squares` with
  the analytic Jacobian and fixed tolerances (FIT_SOLVER). scipy's MINPACK path (`curve_fit`'s
  default 'lm') is not used: its C `qrfac` reads one element past the Jacobian when it recomputes a
  column norm, so near-degenerate fits (a handful of videos) depended on whatever the heap held
  next to it, i.e. on other threads' allocations.
  """
  pred = np.asarray(pred, np.float64).reshape(-1)
  label = np.asarray(label, np.float64).reshape(-1)
  order = np.lexsort((label, pred))
  pred, label = pred[order], label[order]
  std = pred.std()
  candidates = [(pred, 1.0, 0.0)]
  if std > 0:
    candidates.append(((pred - pred.mean()) / std, std, pred.mean()))
  for x, scale, shift in candidates:
    beta = _least_squares_logistic(x, label)
    if beta is not None:
      # Back to the raw prediction scale: x = (pred - shift) / scale.
      return np.array([beta[0], beta[1], beta[2] * scale + shift, beta[3] * scale])
  return None


def logistic_metrics(pred, label) -> dict[str, float]:
  """PLCC and RMSE between the labels and the fitted logistic_4(pred); NaN if the fit fails."""
  beta = fit_logistic(pred, label)
  if beta is None:
    logging.warning("4-parameter logistic fit did not converge on %d predictions; "
                    "plcc_logistic and rmse_logistic are NaN", np.size(pred))
    return {name: float("nan") for name in LOGISTIC_METRIC_NAMES}
  fitted = logistic_4(pred, *beta)
  label = np.asarray(label, np.float64)
  return {"plcc_logistic": pearson(fitted, label),
          "rmse_logistic": float(np.sqrt(np.mean((fitted - label) ** 2)))}


def quality_metrics(pred, label, logistic: bool = True) -> dict[str, float]:
  """SRCC, PLCC, KRCC (tau-b), RMSE after the linear rescale; with `logistic` the fitted ones.

  Every value is the same to the bit in every process (no BLAS sums: see `pearson`, and
  `fit_logistic`).
  """
  pred = np.asarray(pred, np.float64).reshape(-1)
  label = np.asarray(label, np.float64).reshape(-1)
  if pred.shape != label.shape or pred.size < 3:
    raise ValueError(f"need >= 3 matching predictions and labels, got {pred.shape} and "
                     f"{label.shape}")
  if not np.all(np.isfinite(pred)):
    raise ValueError(f"{int(np.sum(~np.isfinite(pred)))} predictions are not finite")
  scaled = rescale(pred, label)
  values = {
      "srcc": pearson(stats.rankdata(pred), stats.rankdata(label)),  # ties: average ranks
      "plcc": pearson(scaled, label),
      "krcc": float(stats.kendalltau(pred, label).statistic),
      "rmse": float(np.sqrt(np.mean((scaled - label) ** 2))),
  }
  if logistic:
    values.update(logistic_metrics(pred, label))
  return values
