"""Model families: what the trainer needs to build, initialise, train and evaluate each model.

`config.model.name` selects the family:

* 'fast_vqa' (FAST-VQA / FasterVQA / SAMA backbones, `models/model.build_model`): input `video`
  (B, T, S, S, 3) fragments; no model state; loss PLCC + `train.plcc_rank_weight` rank, or SmoothL1
  on the labels with `train.loss='smooth_l1'`
  (`losses.make_loss_fn`); a video's score is the mean of its quality map over clips.
* 'simple_vqa' (paper §6.3, `models/simple_vqa.build_simple_vqa`): inputs `video` (B, T, H, W, 3)
  frames at 1 frame/s and `motion` (B, T, motion_dim) SlowFast features; model state
  {'batch_stats'}; loss `simple_vqa_loss.l1_rank_loss` with `config.loss`; a video's score is the
  mean of its per-frame scores (over clips too), in eval mode with the running statistics.

A `Family` is the one place these differ; the trainer, the train step and evaluation are shared.
Evaluation calls `predict_fn(variables(params, model_state), *inputs)` with the inputs in
`input_keys` order and each an eval batch with a clips axis after the batch axis (`video`) or
without (`motion`, one per video).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vqa_jax.config.validation import family_name
from vqa_jax.families import forms
from vqa_jax.families import losses
from vqa_jax.families import simple_vqa_loss
from vqa_jax.models import fast_vqa as model_lib
from vqa_jax.models import simple_vqa

PyTree = Any


def variables(params: PyTree, model_state: PyTree) -> dict:
  """Flax variables {'params', **model_state} (model_state None: params only)."""
  return {"params": params, **(model_state or {})}


@dataclasses.dataclass(frozen=True)
class Family:
  """One model family: its module, inputs, training loss and evaluation score."""

  name: str
  model: nn.Module
  input_keys: tuple[str, ...]  # batch keys the model reads, in call order
  example_inputs: tuple[jax.Array, ...]  # batch-1 zeros of the training input shapes (init)
  loss_fn: forms.StatefulLossFn  # (params, model_state, batch, rng) -> (loss, (pred, state))
  predict_fn: Callable[..., jax.Array]  # (variables, *eval inputs) -> (B,) scores, eval mode

  def init_variables(self, key: jax.Array) -> tuple[PyTree, PyTree]:
    """(params, model_state) of a fresh model; model_state None when it has no other collection."""
    init = dict(self.model.init({"params": key}, *self.example_inputs, train=False))
    params = init.pop("params")
    return params, (init or None)


def _fast_vqa(config: ml_collections.ConfigDict, model: nn.Module) -> Family:
  """FAST-VQA-style models: fragments in, quality map out, PLCC + rank loss."""
  s = config.sampling
  size = s.grid * s.patch
  apply = lambda variables_, video, train: model.apply(variables_, video, train=train)
  return Family(
      name="fast_vqa", model=model, input_keys=("video",),
      example_inputs=(jnp.zeros((1, s.clip_len, size, size, 3), jnp.uint8),),
      loss_fn=forms.as_stateful(losses.make_loss_fn(
          model, config.train.plcc_rank_weight, config.train.loss)),
      predict_fn=forms.make_predict_fn(apply))


def _simple_vqa(config: ml_collections.ConfigDict, model: nn.Module) -> Family:
  """SimpleVQA: frames + motion features in, per-frame scores out, L1 + rank loss."""
  s = config.sampling
  frames = jnp.zeros((1, s.clip_len, s.crop, s.crop, 3), jnp.uint8)
  motion = jnp.zeros((1, s.clip_len, int(config.model.motion_dim)), jnp.float32)

  def predict(variables_, video, motion_features):
    """Eval batch video (B, clips, T, H, W, 3), motion (B, T, D) -> (B,) mean frame scores."""
    b, clips = video.shape[:2]
    frames_ = video.reshape((b * clips,) + video.shape[2:])
    scores = model.apply(variables_, frames_, jnp.repeat(motion_features, clips, axis=0),
                         train=False)
    return scores.reshape(b, -1).mean(axis=1)

  return Family(
      name="simple_vqa", model=model, input_keys=("video", "motion"),
      example_inputs=(frames, motion),
      loss_fn=simple_vqa_loss.make_loss_fn(model, config.loss), predict_fn=predict)


def build(config: ml_collections.ConfigDict, model: nn.Module | None = None) -> Family:
  """The family of `config.model` (its module built from the config unless `model` is given)."""
  name = family_name(config.model)
  if name == "simple_vqa":
    return _simple_vqa(config, model or simple_vqa.build_simple_vqa(config.model))
  return _fast_vqa(config, model or model_lib.build_model(config.model))
