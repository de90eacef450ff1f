"""The function forms a model family hands the trainer: its loss (plain or stateful) and predict.

A plain loss is `loss_fn(params, batch, rng) -> (loss, predictions)`; a stateful one (models with
non-parameter collections such as BatchNorm's `batch_stats`) is `loss_fn(params, model_state,
batch, rng) -> (loss, (predictions, new model_state))`, the form `train_step.make_train_step`
runs. `make_predict_fn` turns a quality-map model into the eval-mode per-video score.
"""

from typing import Any, Callable

import jax

PyTree = Any
# loss_fn(params, batch, rng) -> (loss, predictions)
LossFn = Callable[[PyTree, dict, jax.Array], tuple[jax.Array, jax.Array]]
# stateful loss_fn(params, model_state, batch, rng) -> (loss, (predictions, new model_state))
StatefulLossFn = Callable[[PyTree, PyTree, dict, jax.Array],
                          tuple[jax.Array, tuple[jax.Array, PyTree]]]


def as_stateful(loss_fn: LossFn) -> StatefulLossFn:
  """A plain loss in the stateful form; the model state passes through unchanged."""

  def stateful(params, model_state, batch, rng):
    loss, preds = loss_fn(params, batch, rng)
    return loss, (preds, model_state)

  return stateful


def make_predict_fn(apply_fn: Callable[..., jax.Array]):
  """Builds `predict(params, video) -> (B,)` for eval batches of shape (B, clips, T, H, W, 3).

  `apply_fn(params, video, train=False)` returns a quality map (N, T', H', W'); a video's score is the
  mean over all positions of all its clips.
  """

  def predict(params: PyTree, video: jax.Array) -> jax.Array:
    b, clips = video.shape[:2]
    quality_map = apply_fn(params, video.reshape((b * clips,) + video.shape[2:]), train=False)
    return quality_map.reshape(b, -1).mean(axis=1)

  return predict
