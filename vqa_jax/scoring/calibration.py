"""Score calibration: raw model output -> MOS on the training scale and a [0, 1] score.

Two rules, both monotone in the raw score:

* 'logistic' (a run trained here): the 4-parameter logistic `metrics.logistic_4` fitted by
  least squares from raw predictions to MOS on the run's validation split (its training split when
  it has none), `mos = clip(logistic_4(raw, beta), label_min, label_max)` with the training
  labels' range, and `score_01 = (mos - label_min) / (label_max - label_min)`. Labels are taken to
  be MOS (higher = better), so both outputs are higher = better whatever the sign of the raw
  score's correlation with MOS.
* 'upstream_sigmoid' (converted official FAST-VQA / FasterVQA weights): the official inference
  script's rule, `score_01 = 1 / (1 + exp(-(raw - mean) / std))` with per-model constants
  (github.com/VQAssessment/FAST-VQA-and-FasterVQA, vqa.py @9f264e4, `mean_stds` and
  `sigmoid_rescale`, lines 10-23). Upstream states no MOS scale, so `mos` is None.

A run's calibration is a JSON file, `calibration.json`, beside its `checkpoints/` folder (the
workdir, and `<workdir>/best` for the selected checkpoint), holding one entry per params key
('ema_params', 'params') with the step it was fitted at. `for_checkpoint` finds the one that
belongs to a checkpoint that `pretrained.locate` reads; a stale step or a missing file is reported
as the reason there is none, never replaced by a guess.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import ml_collections
import numpy as np

from vqa_jax.evaluation import metrics
from vqa_jax.convert import pretrained

FILE_NAME = "calibration.json"
LOGISTIC = "logistic"
UPSTREAM = "upstream_sigmoid"
UPSTREAM_SOURCE = ("github.com/VQAssessment/FAST-VQA-and-FasterVQA vqa.py @9f264e4 "
                   "(mean_stds, sigmoid_rescale)")
# Official (mean, std) of each upstream model's raw score (vqa.py @9f264e4, lines 17-23).
UPSTREAM_MEAN_STD = {
    "FasterVQA": (0.14759505, 0.03613452),
    "FasterVQA-MS": (0.15218826, 0.03230298),
    "FasterVQA-MT": (0.14699507, 0.036453716),
    "FAST-VQA": (-0.110198185, 0.04178565),
    "FAST-VQA-M": (0.023889644, 0.030781006),
}
# Which upstream model a config reproduces: (sampling.method, grid, patch, clip_len,
# model.embed_dim, model.depths) as in configs/fast_vqa_b.py, faster_vqa.py, fast_vqa_m.py.
UPSTREAM_CONFIGS = {
    ("fragments", 7, 32, 32, 96, (2, 2, 6, 2)): "FAST-VQA",
    ("fragments_t", 7, 32, 32, 96, (2, 2, 6, 2)): "FasterVQA",
    ("fragments", 4, 32, 16, 96, (2, 2, 6, 2)): "FAST-VQA-M",
}


@dataclasses.dataclass(frozen=True)
class Calibration:
  """A monotone map raw score -> (mos, score_01); see the module docstring for the two kinds."""

  kind: str  # LOGISTIC or UPSTREAM.
  beta: tuple[float, ...] = ()  # logistic_4's (b1, b2, b3, b4); UPSTREAM: (mean, std).
  label_range: tuple[float, float] | None = None  # LOGISTIC: training labels' (min, max).
  source: str = ""  # What it was fitted on / where the constants come from.
  step: int | None = None  # Training step of the calibrated params (LOGISTIC).

  def score_01(self, raw) -> np.ndarray:
    """The [0, 1] score (higher = better) of raw scores (any shape, float64)."""
    raw = np.asarray(raw, np.float64)
    if self.kind == UPSTREAM:
      mean, std = self.beta
      return 1.0 / (1.0 + np.exp(-(raw - mean) / std))
    low, high = self.label_range
    return (self.mos(raw) - low) / (high - low) if high > low else np.full(raw.shape, 0.5)

  def mos(self, raw) -> np.ndarray | None:
    """MOS on the training scale of raw scores (any shape); None under the upstream rule."""
    if self.kind == UPSTREAM:
      return None
    return np.clip(metrics.logistic_4(raw, *self.beta), *self.label_range)

  def apply(self, raw: float) -> dict[str, float | None]:
    """{'mos', 'score_01'} of one raw score (mos None under the upstream rule)."""
    mos = self.mos(raw)
    return {"mos": None if mos is None else float(mos), "score_01": float(self.score_01(raw))}

  def display_scale(self) -> tuple[Any, tuple[float, float], str]:
    """(raw -> shown values, their fixed (min, max), its name) for pictures of local maps."""
    if self.kind == UPSTREAM:
      return self.score_01, (0.0, 1.0), "score_01 (upstream sigmoid, higher = better)"
    return self.mos, self.label_range, "MOS, training scale (higher = better)"

  def describe(self) -> str:
    """One line for people: the rule, its scale and where it comes from."""
    if self.kind == UPSTREAM:
      return f"score_01 = sigmoid((raw - {self.beta[0]}) / {self.beta[1]}), {self.source}"
    low, high = self.label_range
    return (f"mos on the training MOS scale [{low:g}, {high:g}] (higher = better) by a "
            f"4-parameter logistic fitted on {self.source}; score_01 = mos rescaled to [0, 1]")

  def to_json(self) -> dict:
    """The JSON-serialisable fields."""
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, data: dict) -> "Calibration":
    """Inverse of `to_json`."""
    data = dict(data)
    data["beta"] = tuple(data.get("beta", ()))
    if data.get("label_range") is not None:
      data["label_range"] = tuple(data["label_range"])
    return cls(**data)


def fit(pred, label, label_range: tuple[float, float], source: str,
        step: int | None = None) -> Calibration | None:
  """The logistic calibration of raw `pred` to MOS `label`; None when the fit fails."""
  beta = metrics.fit_logistic(pred, label)
  if beta is None:
    return None
  return Calibration(kind=LOGISTIC, beta=tuple(float(b) for b in beta),
                     label_range=(float(label_range[0]), float(label_range[1])), source=source,
                     step=step)


def upstream(name: str) -> Calibration:
  """The official inference script's rule for upstream model `name` (a key of UPSTREAM_MEAN_STD)."""
  return Calibration(kind=UPSTREAM, beta=UPSTREAM_MEAN_STD[name],
                     source=f"{name} constants of {UPSTREAM_SOURCE}")


def upstream_name(config: ml_collections.ConfigDict) -> str | None:
  """The upstream model `config` reproduces (UPSTREAM_CONFIGS), or None."""
  s, m = config.sampling, config.model
  # A SimpleVQA model section has no embed_dim or depths: no upstream FAST-VQA model matches it.
  key = (s.method, s.grid, s.patch, s.clip_len, m.get("embed_dim"), tuple(m.get("depths") or ()))
  return UPSTREAM_CONFIGS.get(key)


def save(run_dir: str, params_key: str, calibration: Calibration) -> str:
  """Adds `calibration` for `params_key` to `<run_dir>/calibration.json`; returns the path."""
  path = os.path.join(run_dir, FILE_NAME)
  entries = _read(path) if os.path.isfile(path) else {}
  entries[params_key] = calibration.to_json()
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(entries, f, indent=1)
  os.replace(tmp, path)
  return path


def _read(path: str) -> dict[str, Any]:
  """The entries of a calibration file."""
  with open(path) as f:
    return json.load(f)


def run_dir_of(location: pretrained.Location) -> str:
  """The folder a checkpoint's calibration file lives in: the workdir (or best/) or the item."""
  if location.kind == pretrained.TRAINER:  # <run>/checkpoints/<step>/<item>
    return os.path.dirname(os.path.dirname(os.path.dirname(location.item_dir)))
  return location.item_dir


def for_checkpoint(config: ml_collections.ConfigDict, checkpoint: str,
                   use_ema: bool = True) -> tuple[Calibration | None, str]:
  """(calibration, description) of `checkpoint`; (None, why there is none) without one."""
  location = pretrained.locate(checkpoint)
  params_key = location.params_key(use_ema)
  path = os.path.join(run_dir_of(location), FILE_NAME)
  if os.path.isfile(path):
    entry = _read(path).get(params_key)
    if entry is None:
      return None, f"no calibration: {path} has none for '{params_key}'"
    calibration = Calibration.from_json(entry)
    if location.kind == pretrained.TRAINER and calibration.step != location.step:
      return None, (f"no calibration: {path} was fitted at step {calibration.step}, this "
                    f"checkpoint is step {location.step}")
    return calibration, calibration.describe()
  if location.kind == pretrained.CONVERTED and upstream_name(config):
    calibration = upstream(upstream_name(config))
    return calibration, calibration.describe()
  return None, (f"no calibration: no {FILE_NAME} beside {location.item_dir} (raw scores only; "
                "a trained run writes one at the end)")
