"""Evaluation over a labelled split: multi-clip predictions gathered to the host, then metrics.

`predict_fn(params, *inputs)` gets the batch's model inputs (`input_pipeline.MODEL_INPUTS` present
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

from vqa_jax import metrics
from vqa_jax import sharding
from vqa_jax.data import input_pipeline
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


def predict_split(predict_fn: Callable, params: PyTree, entries: list[Entry],
                  sampling: ml_collections.ConfigDict, batch_size: int, num_clips: int,
                  mesh: jax.sharding.Mesh, on_bad_video: str = "error",
                  motion: Any = None) -> tuple[np.ndarray, np.ndarray]:
  """Scores every video of `entries` in file order; returns (predictions, labels).

  With on_bad_video='skip' undecodable videos are left out, counted and logged. `motion` (a
  `data.motion.MotionFeatures`) adds each video's `motion` input (SimpleVQA).
  """
  bad_videos = input_pipeline.BadVideoLog()
  dataset = input_pipeline.eval_dataset(entries, sampling, batch_size, num_clips,
                                        on_bad_video=on_bad_video, bad_videos=bad_videos,
                                        motion=motion)
  preds, labels = [], []
  for batch in input_pipeline.as_numpy(dataset):
    inputs = sharding.shard_batch(input_pipeline.model_inputs(batch), mesh)
    # The global batch's scores, replicated.
    scores = np.asarray(jax.device_get(predict_fn(params, *inputs.values())))
    valid = global_rows(np.asarray(batch["valid"], bool))
    preds.append(scores[valid])
    labels.append(global_rows(np.asarray(batch["label"]))[valid])
  if bad_videos.count:
    logging.warning("evaluation: %s of %d", bad_videos.summary(), len(entries))
  preds, labels = np.concatenate(preds), np.concatenate(labels)
  if not preds.size:
    raise ValueError(f"no decodable video among the {len(entries)} of this split")
  return preds, labels


def evaluate_split(predict_fn: Callable, params: PyTree, entries: list[Entry],
                   sampling: ml_collections.ConfigDict, batch_size: int, num_clips: int,
                   mesh: jax.sharding.Mesh, on_bad_video: str = "error",
                   logistic: bool = True, motion: Any = None) -> dict[str, float]:
  """SRCC, PLCC, KRCC, RMSE (with `logistic` also the fitted PLCC / RMSE) on one split."""
  preds, labels = predict_split(predict_fn, params, entries, sampling, batch_size, num_clips, mesh,
                                on_bad_video, motion)
  return metrics.quality_metrics(preds, labels, logistic=logistic)
