"""Evaluation over a labelled split: multi-clip predictions gathered to the host, then metrics."""

import math
from typing import Any, Callable

import jax
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


def predict_split(predict_fn: Callable, params: PyTree, entries: list[Entry],
                  sampling: ml_collections.ConfigDict, batch_size: int, num_clips: int,
                  mesh: jax.sharding.Mesh) -> tuple[np.ndarray, np.ndarray]:
  """Scores every video of `entries` in file order; returns (predictions, labels)."""
  dataset = input_pipeline.eval_dataset(entries, sampling, batch_size, num_clips)
  preds, labels = [], []
  for batch in input_pipeline.as_numpy(dataset):
    video = sharding.shard_batch({"video": batch["video"]}, mesh)["video"]
    scores = np.asarray(jax.device_get(predict_fn(params, video)))
    valid = np.asarray(batch["valid"], bool)
    preds.append(scores[valid])
    labels.append(np.asarray(batch["label"])[valid])
  return np.concatenate(preds), np.concatenate(labels)


def evaluate_split(predict_fn: Callable, params: PyTree, entries: list[Entry],
                   sampling: ml_collections.ConfigDict, batch_size: int, num_clips: int,
                   mesh: jax.sharding.Mesh) -> dict[str, float]:
  """SRCC, PLCC, KRCC and RMSE of the model on one split."""
  preds, labels = predict_split(predict_fn, params, entries, sampling, batch_size, num_clips, mesh)
  return metrics.quality_metrics(preds, labels)
