"""Evaluation over a labelled split: multi-clip predictions gathered to the host, then metrics.

`predict_fn(params, *inputs)` gets the batch's model inputs (`element_plan.MODEL_INPUTS` present
in it: `video`, and with motion features `motion`) in that order, each a global jax.Array split on
the data axis, and returns the (B,) scores; `params` is whatever the function takes (FAST-VQA's
params, or SimpleVQA's {'params', 'batch_stats'} variables, see `families`).
"""

import math
from typing import Any, Callable

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from vqa_jax.evaluation import metrics
from vqa_jax.runtime import sharding
from vqa_jax.data import element_plan
from vqa_jax.data import loaders
from vqa_jax.data.labels import Entry

PyTree = Any


def eval_batch_size(requested: int, mesh: jax.sharding.Mesh) -> int:
  """The requested eval batch rounded up to a multiple of the mesh's data-axis size."""
  n = mesh.shape[sharding.DATA_AXIS]
  return int(math.ceil(requested / n) * n)


def global_rows(host_rows: np.ndarray) -> np.ndarray:
  """This process's rows of a global batch -> all rows, in process order (as the batch is laid out)."""
  if jax.process_count() == 1:
    return host_rows
  return np.asarray(multihost_utils.process_allgather(host_rows, tiled=True))


def predict_split_models(predict_fn: Callable, params_by_model: dict[str, PyTree],
                         entries: list[Entry], sampling: ml_collections.ConfigDict,
                         batch_size: int, num_clips: int, mesh: jax.sharding.Mesh,
                         on_bad_video: str = "error", motion: Any = None,
                         loader: str = "tf_data",
                         workers: int = -1) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Scores every video of `entries` in file order with each model; ({model: preds}, labels).

  The split is decoded once and each batch scored by every model of `params_by_model`. With
  on_bad_video='skip' undecodable videos are left out, counted and logged. `motion` (a
  `data.motion.MotionFeatures`) adds each video's `motion` input (SimpleVQA). `loader` and
  `workers` choose the input loader (`data.loader`, `data.workers`).
  """
  plan = element_plan.eval_plan(entries, sampling, batch_size, num_clips, on_bad_video=on_bad_video,
                            motion=motion)
  preds = {name: [] for name in params_by_model}
  labels = []
  for batch in loaders.batches(plan, loader, workers):
    inputs = sharding.shard_batch(element_plan.model_inputs(batch), mesh)
    valid = global_rows(np.asarray(batch["valid"], bool))
    for name, params in params_by_model.items():
      # The global batch's scores, replicated.
      scores = np.asarray(jax.device_get(predict_fn(params, *inputs.values())))
      preds[name].append(scores[valid])
    labels.append(global_rows(np.asarray(batch["label"]))[valid])
  if plan.bad_videos.count:
    logging.warning("evaluation: %s of %d", plan.bad_videos.summary(), len(entries))
  labels = np.concatenate(labels)
  if not labels.size:
    raise ValueError(f"no decodable video among the {len(entries)} of this split")
  return {name: np.concatenate(p) for name, p in preds.items()}, labels


def evaluate_split_models(predict_fn: Callable, params_by_model: dict[str, PyTree],
                          entries: list[Entry], sampling: ml_collections.ConfigDict,
                          batch_size: int, num_clips: int, mesh: jax.sharding.Mesh,
                          on_bad_video: str = "error", logistic: bool = True, motion: Any = None,
                          loader: str = "tf_data", workers: int = -1) -> dict[str, dict]:
  """{model: SRCC, PLCC, KRCC, RMSE (and with `logistic` the fitted PLCC / RMSE)} on one split."""
  preds, labels = predict_split_models(predict_fn, params_by_model, entries, sampling, batch_size,
                                       num_clips, mesh, on_bad_video, motion, loader, workers)
  return {name: metrics.quality_metrics(p, labels, logistic=logistic) for name, p in preds.items()}
