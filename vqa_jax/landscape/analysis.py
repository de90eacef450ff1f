"""Everything measured on one checkpoint: metrics per fixed set, landscapes and sharpness.

`Analyzer` owns the jitted programs of one model (built once, reused for every checkpoint, so only
the first checkpoint pays the compiles). `Analyzer.checkpoint(params, sets, landscape_set)` returns
a JSON-ready dict:
  metrics     {set: {loss, srcc, plcc, krcc, rmse}} at the unperturbed weights (eval mode);
  landscape   on `landscape_set`: 'random' (1-D along each of K filter-normalised Gaussian
              directions, values [k][i]), 'plane' (2-D over directions 0 and 1), 'awp' (the exact
              AWP perturbation of radius |α| along the set-loss gradient);
  sharpness   loss_increase (mean and max over the K directions of L(w + α_s·d) − L(w)),
              worst_case_increase (max over the γ-ball by projected ascent, minus L(w)),
              top_eigenvalue, hessian_trace (± its standard error); the Hessian is over all params.
All random directions come from `seed`, so every checkpoint is probed with the same Gaussian draws
(each filter-normalised to its own weights).
"""

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from vqa_jax.evaluation import metrics as metrics_lib
from vqa_jax.landscape import directions as directions_lib
from vqa_jax.landscape import sharpness as sharpness_lib
from vqa_jax.landscape import surface
from vqa_jax.landscape.fixed_set import FixedSet
from vqa_jax.models import fast_vqa as model_lib
from vqa_jax.families.loss_and_predict import make_predict_fn

PyTree = Any
# The sharpness measures of a checkpoint record that are correlated with the gaps.
SHARPNESS_MEASURES = ("loss_increase", "worst_case_increase", "top_eigenvalue", "hessian_trace")


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
  """What to measure and at which resolution."""

  alpha_max: float = 1.0  # random-direction landscapes over α ∈ [−alpha_max, alpha_max]
  line_points: int = 21
  plane_points: int = 11  # per axis; 0 skips the 2-D landscape
  num_directions: int = 4  # K random directions (>= 2 for the plane)
  sharpness_alpha: float = 0.5  # α_s of the loss-increase measure
  include_biases_and_norms: bool = False
  awp_gamma_max: float = 0.05  # AWP landscape over α ∈ [−awp_gamma_max, awp_gamma_max]
  ball_gamma: float = 0.01  # radius γ of the worst-case ball
  ball_steps: int = 5
  power_iters: int = 20
  hutchinson_probes: int = 16
  seed: int = 0

  def __post_init__(self):
    if self.num_directions < (2 if self.plane_points else 1):
      raise ValueError(f"num_directions={self.num_directions} is too few (the plane needs 2)")
    for name in ("line_points", "ball_steps", "power_iters", "hutchinson_probes"):
      if getattr(self, name) < 1:
        raise ValueError(f"AnalysisConfig.{name} must be >= 1, got {getattr(self, name)}")
    if self.hutchinson_probes < 2:
      raise ValueError("hutchinson_probes must be >= 2 (the standard error needs two)")

  @property
  def alphas(self) -> np.ndarray:
    """The α grid of the random-direction lines and of the plane's axes (plane_points)."""
    return np.linspace(-self.alpha_max, self.alpha_max, self.line_points, dtype=np.float32)

  @property
  def plane_alphas(self) -> np.ndarray:
    """The grid of each axis of the plane."""
    return np.linspace(-self.alpha_max, self.alpha_max, self.plane_points, dtype=np.float32)

  @property
  def awp_alphas(self) -> np.ndarray:
    """The radii of the AWP landscape (negative: against the gradient)."""
    return np.linspace(-self.awp_gamma_max, self.awp_gamma_max, self.line_points, dtype=np.float32)


def linear_coords(cfg: AnalysisConfig) -> tuple[np.ndarray, dict[str, slice]]:
  """All points along the K directions in one (P, K) array, and the rows of each part.

  Parts: 'origin' (α = 0), 'sharpness' (α_s·e_k for each k), 'lines' (α·e_k, direction-major) and
  'plane' (α·e_0 + β·e_1, α-major).
  """
  k = cfg.num_directions
  eye = np.eye(k, dtype=np.float32)
  parts = {"origin": np.zeros((1, k), np.float32), "sharpness": cfg.sharpness_alpha * eye,
           "lines": (eye[:, None, :] * cfg.alphas[None, :, None]).reshape(-1, k)}
  if cfg.plane_points:
    a, b = np.meshgrid(cfg.plane_alphas, cfg.plane_alphas, indexing="ij")
    plane = np.zeros((a.size, k), np.float32)
    plane[:, 0], plane[:, 1] = a.reshape(-1), b.reshape(-1)
    parts["plane"] = plane
  rows, start = {}, 0
  for name, block in parts.items():
    rows[name] = slice(start, start + len(block))
    start += len(block)
  return np.concatenate(list(parts.values())), rows


def line_increase(landscape: dict, alpha: float, value: str = "loss") -> float:
  """Mean over the K random lines and both signs of L(±α) − L(0), read off a landscape record.

  α must lie on the record's grid (to 1e-6); this gives the loss-increase measure at any grid α
  after the fact, without evaluating new points.
  """
  grid = np.asarray(landscape["alpha"], np.float64)
  lines = np.asarray(landscape["random"][value], np.float64)
  index = {a: np.flatnonzero(np.abs(grid - a) < 1e-6) for a in (-alpha, 0.0, alpha)}
  missing = [a for a, i in index.items() if not i.size]
  if missing:
    raise ValueError(f"alpha {missing} not on the landscape grid {grid.tolist()}")
  at = {a: lines[:, i[0]] for a, i in index.items()}
  return float(np.mean((at[-alpha] + at[alpha]) / 2 - at[0.0]))


def make_predict(model) -> surface.PredictFn:
  """predict(params, video (B, clips, T, H, W, 3)) -> (B,) in eval mode, as vqa_jax.score does."""
  predict = make_predict_fn(model.apply)
  return lambda params, video: predict({"params": params}, video)


class Analyzer:
  """The jitted measurement programs of one model (see the module docstring)."""

  def __init__(self, model, cfg: AnalysisConfig, *, loss_batch: int, rank_weight: float,
               video_batch: int = 16, point_chunk: int = 4):
    self.cfg = cfg
    self.ev = surface.SurfaceEvaluator(make_predict(model), video_batch=video_batch,
                                       point_chunk=point_chunk, loss_batch=loss_batch,
                                       rank_weight=rank_weight)
    loss_fn = self.ev.loss_fn
    self._eigen = jax.jit(lambda p, rng, v, y: sharpness_lib.top_eigenvalue(
        loss_fn, p, rng, v, y, iters=cfg.power_iters)[0])
    self._trace = jax.jit(lambda p, rng, v, y: sharpness_lib.hutchinson_trace(
        loss_fn, p, rng, v, y, probes=cfg.hutchinson_probes))
    self._worst = jax.jit(lambda p, v, y: sharpness_lib.worst_case_in_ball(
        loss_fn, p, v, y, gamma=cfg.ball_gamma, steps=cfg.ball_steps)[0])
    self._directions = jax.jit(functools.partial(
        directions_lib.random_directions, count=cfg.num_directions,
        include_biases_and_norms=cfg.include_biases_and_norms))

  def metrics(self, params: PyTree, data: FixedSet) -> dict[str, float]:
    """Loss and quality metrics of the set at `params` (eval mode)."""
    preds = self.ev.predictions(params, data)
    loss = float(self.ev.values(preds, data)["loss"][0])
    return {"loss": loss, **metrics_lib.quality_metrics(preds, data.label)}

  def directions(self, params: PyTree) -> PyTree:
    """The K filter-normalised Gaussian directions (stacked) of `cfg.seed` for these weights."""
    return self._directions(jax.random.key(self.cfg.seed), params)

  def landscape(self, params: PyTree, data: FixedSet) -> tuple[dict, dict]:
    """(landscape record, loss-increase sharpness) on `data`, from one linear-points program."""
    cfg = self.cfg
    coords, rows = linear_coords(cfg)
    values = self.ev.linear(params, self.directions(params), coords, data)
    k, n = cfg.num_directions, cfg.line_points
    record = {"alpha": cfg.alphas.tolist(), "awp": surface.awp_line(self.ev, params,
                                                                    cfg.awp_alphas, data)}
    record["random"] = {name: v[rows["lines"]].reshape(k, n).tolist() for name, v in values.items()}
    if "plane" in rows:
      record["plane"] = {"alpha": cfg.plane_alphas.tolist(), "beta": cfg.plane_alphas.tolist(),
                         **{name: v[rows["plane"]].reshape(cfg.plane_points, -1).tolist()
                            for name, v in values.items()}}
    origin = values["loss"][rows["origin"]][0]
    increase = values["loss"][rows["sharpness"]] - origin
    sharp = {"loss": float(origin), "loss_increase": float(increase.mean()),
             "loss_increase_max": float(increase.max()),
             "srcc_drop": float(np.mean(values["one_minus_srcc"][rows["sharpness"]]
                                        - values["one_minus_srcc"][rows["origin"]][0]))}
    return record, sharp

  def curvature(self, params: PyTree, data: FixedSet) -> dict[str, float]:
    """Worst case in the γ-ball, top Hessian eigenvalue and Hutchinson trace on `data`."""
    key = jax.random.key(self.cfg.seed + 1)
    eig_key, trace_key = jax.random.split(key)
    loss, _ = self.ev.loss_and_grad(params, data)
    worst = float(self._worst(params, data.video, data.label))
    trace, trace_err = self._trace(params, trace_key, data.video, data.label)
    return {"worst_case_loss": worst, "worst_case_increase": worst - loss,
            "top_eigenvalue": float(self._eigen(params, eig_key, data.video, data.label)),
            "hessian_trace": float(trace), "hessian_trace_stderr": float(trace_err)}

  def checkpoint(self, params: PyTree, sets: dict[str, FixedSet],
                 landscape_set: str) -> dict[str, Any]:
    """Metrics on every set, and the landscape and sharpness on `landscape_set`."""
    if landscape_set not in sets:
      raise KeyError(f"landscape set {landscape_set!r} not among the fixed sets {sorted(sets)}")
    data = sets[landscape_set]
    record, sharp = self.landscape(params, data)
    return {"metrics": {name: self.metrics(params, s) for name, s in sets.items()},
            "landscape": record, "sharpness": {**sharp, **self.curvature(params, data)}}


def build_analyzer(config, cfg: AnalysisConfig, *, loss_batch: int | None = None,
                   video_batch: int = 16, point_chunk: int = 4) -> Analyzer:
  """An Analyzer for `config.model`, with the training loss of `config.train` by default."""
  return Analyzer(model_lib.build_model(config.model), cfg,
                  loss_batch=loss_batch or config.train.batch_size,
                  rank_weight=config.train.plcc_rank_weight, video_batch=video_batch,
                  point_chunk=point_chunk)
