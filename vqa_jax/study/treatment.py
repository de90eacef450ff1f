"""Did the treatment take? Per run, the flatness at the training radii and the realised perturbation.

A weight perturbation can only improve generalisation through flatter weights, so a null effect
means something only where the variant's weights are flatter than its baseline's. Every cross run
records, on the training subset and at every radius γ of the study's perturbation variants:

* worst_case_increase@γ: the largest training-loss increase found in the layer-relative ball of
  radius γ (`sharpness.worst_case_in_ball`, the AWP set, projected ascent);
* random_increase@γ: the mean increase along `RANDOM_DIRECTIONS` Gaussian directions scaled as
  RWP scales them (layer-relative radius γ, element-wise box);

and from its training log the mean realised perturbed-minus-clean loss over the logged steps
(`realised_increase`, perturbation variants only; the perturbed pass draws fresh dropout masks, so
dropout's noise is part of it). Weight-decay variants act on the weight norm: their record has the
final `param_norm`. `treatment_rows` pairs these with the same seed's baseline.
"""

import json
import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax import perturb
from vqa_jax.landscape import sharpness as sharpness_lib
from vqa_jax.study import significance
from vqa_jax.study import variants

RANDOM_DIRECTIONS = 4
METRICS_FILE = "metrics.jsonl"


def radii(names: Sequence[str]) -> list[float]:
  """The training radii of the perturbation variants among `names`, ascending."""
  return sorted({variants.gamma(v) for v in names if variants.gamma(v) is not None})


def radius_key(measure: str, gamma: float) -> str:
  """The record key of a measure at radius γ: 'worst_case_increase@0.001'."""
  return f"{measure}@{gamma:g}"


class FlatnessAtRadii:
  """Jitted worst-case and random-direction loss increases at a radius given at call time."""

  def __init__(self, loss_fn, ball_steps: int, seed: int = 0):
    self._loss = jax.jit(loss_fn)
    self._worst = jax.jit(lambda p, v, y, g: sharpness_lib.worst_case_in_ball(
        loss_fn, p, v, y, gamma=g, steps=ball_steps)[0])

    def random_losses(p, v, y, g):
      mask = perturb.weight_mask(p)
      relative = perturb.make_perturbation("rwp", mask)
      keys = jax.random.split(jax.random.key(seed), RANDOM_DIRECTIONS)

      def one(key):
        direction = relative.direction(p, None, key)
        delta = perturb.ascent(relative, p, direction, None, g, 1, mask)
        return loss_fn(perturb.apply_delta(p, delta, mask), v, y)

      return jax.lax.map(one, keys)

    self._random = jax.jit(random_losses)

  def __call__(self, params, data, gammas: Sequence[float]) -> dict[str, float]:
    """{'worst_case_increase@γ', 'random_increase@γ'} for every γ, on the fixed set `data`."""
    loss = float(self._loss(params, data.video, data.label))
    out = {}
    for g in gammas:
      g32 = jnp.float32(g)
      out[radius_key("worst_case_increase", g)] = float(
          self._worst(params, data.video, data.label, g32)) - loss
      out[radius_key("random_increase", g)] = float(
          jnp.mean(self._random(params, data.video, data.label, g32))) - loss
    return out


def training_log(workdir: str) -> list[dict]:
  """The logged training steps of a trainer workdir (its metrics.jsonl), in order."""
  path = os.path.join(workdir, METRICS_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      return [json.loads(line) for line in f if line.strip()]
  except FileNotFoundError as e:
    raise FileNotFoundError(f"{path}: no training log to read the treatment from") from e


def realised(workdir: str) -> dict[str, float]:
  """{'realised_increase': mean perturbed − clean loss over logged steps (nan without a
  perturbation), 'logged_steps', 'param_norm': the last logged weight norm}."""
  steps = [s for s in training_log(workdir) if "loss" in s and "step" in s]
  if not steps:
    raise ValueError(f"{os.path.join(workdir, METRICS_FILE)}: no logged training step")
  increases = [s["perturbed_loss"] - s["loss"] for s in steps if "perturbed_loss" in s]
  return {"realised_increase": float(np.mean(increases)) if increases else float("nan"),
          "logged_steps": len(steps), "param_norm": float(steps[-1]["param_norm"])}


def treatment_measures(variant: str) -> list[tuple[str, int]]:
  """[(record key, intended sign of the paired change)] of `variant`; the first is the check."""
  g = variants.gamma(variant)
  if g is not None:  # flatter: both increases lower than the baseline's at the same radius
    return [(radius_key("worst_case_increase", g), -1), (radius_key("random_increase", g), -1)]
  overrides = variants.VARIANTS[variant]
  if "train.weight_decay" in overrides:
    return [("param_norm", -1 if overrides["train.weight_decay"] > BASELINE_WD else +1)]
  return []


BASELINE_WD = 0.05  # configs/study.py's; a larger decay should shrink the weights


def treatment_rows(runs: Mapping[str, Mapping[str, Any]], alpha: float = significance.ALPHA,
                   baseline: str = "baseline") -> list[dict]:
  """Per (variant, measure): the paired change against the baseline and whether it took.

  'took' needs the paired t-test's p < α with the mean change in the intended direction; the
  variant's first measure is its 'check' (worst case at its γ; the weight norm for decay).
  """
  by_variant: dict[str, dict[int, dict]] = {}
  for run in runs.values():
    by_variant.setdefault(run["variant"], {})[run["seed"]] = run["treatment"]
  base = by_variant.get(baseline, {})
  rows = []
  for variant, by_seed in by_variant.items():
    measures = [] if variant == baseline else treatment_measures(variant)
    for i, (key, sign) in enumerate(measures):
      stats = significance.paired({s: t[key] for s, t in base.items()},
                                  {s: t[key] for s, t in by_seed.items()})
      took = bool(stats["t_p"] < alpha and np.sign(stats["delta"]["mean"]) == sign)
      rows.append({"variant": variant, "measure": key, "check": i == 0,
                   "intended": "lower" if sign < 0 else "higher", "took": took, **stats})
  return rows


def took_by_variant(rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
  """Whether each variant's check measure took."""
  return {row["variant"]: row["took"] for row in rows if row["check"]}


def realised_by_variant(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
  """{variant: (mean, sample sd over seeds)} of the realised perturbed − clean training loss."""
  values: dict[str, list[float]] = {}
  for run in runs.values():
    x = run["treatment"]["realised_increase"]
    if not np.isnan(x):
      values.setdefault(run["variant"], []).append(x)
  return {v: (float(np.mean(x)), float(np.std(x, ddof=1)) if len(x) > 1 else float("nan"))
          for v, x in values.items()}
