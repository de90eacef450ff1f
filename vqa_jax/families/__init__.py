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

`abstract_variables(model_cfg)` is the one abstract model of the package (the shapes of every
collection, from the family's own `init_inputs`): what the converters fill and what scoring checks
checkpoints against; `Family.init_variables` initialises the same model on the same inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vqa_jax import perturb_precision
from vqa_jax.config import perturb_config
from vqa_jax.config.validation import family_name
from vqa_jax.families import loss_and_predict
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
  init_inputs: tuple[jax.ShapeDtypeStruct, ...]  # what the model initialises on (`init_inputs`)
  # (params, model_state, batch, rng) -> (loss, (pred, state))
  loss_fn: loss_and_predict.StatefulLossFn
  predict_fn: Callable[..., jax.Array]  # (variables, *eval inputs) -> (B,) scores, eval mode

  def init_variables(self, key: jax.Array) -> tuple[PyTree, PyTree]:
    """(params, model_state) of a fresh model; model_state None when it has no other collection."""
    init = dict(_init(self.model, self.init_inputs, key))
    params = init.pop("params")
    return params, (init or None)


def build_model(model_cfg: ml_collections.ConfigDict) -> nn.Module:
  """The Flax module of `model_cfg`'s family (`fast_vqa.build_model` or `build_simple_vqa`)."""
  if family_name(model_cfg) == "simple_vqa":
    return simple_vqa.build_simple_vqa(model_cfg)
  return model_lib.build_model(model_cfg)


def init_inputs(model_cfg: ml_collections.ConfigDict) -> tuple[jax.ShapeDtypeStruct, ...]:
  """The batch-1 inputs a family's model initialises on: the smallest its config takes.

  A model's variables do not depend on its input size, so these give the variables that the
  training inputs would, for less work. fast_vqa: a uint8 video of one window per stage (T = patch_t
  window_t frames, side patch window 2^(stages-1)); simple_vqa: one 64x64 uint8 frame and its
  float32 motion features.
  """
  if family_name(model_cfg) == "simple_vqa":
    return (jax.ShapeDtypeStruct((1, 1, 64, 64, 3), jnp.uint8),
            jax.ShapeDtypeStruct((1, 1, int(model_cfg.motion_dim)), jnp.float32))
  (pt, ps), window = model_cfg.patch_size[:2], model_cfg.window_size
  side = ps * window[1] * 2 ** (len(model_cfg.depths) - 1)
  return (jax.ShapeDtypeStruct((1, pt * window[0], side, side, 3), jnp.uint8),)


def _init(model: nn.Module, inputs: tuple[jax.ShapeDtypeStruct, ...], key: jax.Array) -> dict:
  """`model.init` in eval mode on zeros of `inputs`: every collection of a fresh model."""
  zeros = [jnp.zeros(x.shape, x.dtype) for x in inputs]
  return model.init({"params": key}, *zeros, train=False)


def abstract_variables(model_cfg: ml_collections.ConfigDict) -> dict[str, PyTree]:
  """Shapes of every collection of `model_cfg`'s model ({'params'[, 'batch_stats']}); no compute.

  The one abstract model of the package: what the converters fill, and what checkpoints are
  checked against and restored into.
  """
  model = build_model(model_cfg)
  return jax.eval_shape(lambda: _init(model, init_inputs(model_cfg), jax.random.key(0)))


def _fast_vqa(config: ml_collections.ConfigDict, model: nn.Module) -> Family:
  """FAST-VQA-style models: fragments in, quality map out, PLCC + rank loss."""
  apply = lambda variables_, video, train: model.apply(variables_, video, train=train)
  return Family(
      name="fast_vqa", model=model, input_keys=("video",), init_inputs=init_inputs(config.model),
      loss_fn=loss_and_predict.as_stateful(losses.make_loss_fn(
          model, config.train.plcc_rank_weight, config.train.loss)),
      predict_fn=loss_and_predict.make_predict_fn(apply))


def _simple_vqa(config: ml_collections.ConfigDict, model: nn.Module) -> Family:
  """SimpleVQA: frames + motion features in, per-frame scores out, L1 + rank loss."""

  def predict(variables_, video, motion_features):
    """Eval batch video (B, clips, T, H, W, 3), motion (B, T, D) -> (B,) mean frame scores."""
    b, clips = video.shape[:2]
    frames_ = video.reshape((b * clips,) + video.shape[2:])
    scores = model.apply(variables_, frames_, jnp.repeat(motion_features, clips, axis=0),
                         train=False)
    return scores.reshape(b, -1).mean(axis=1)

  return Family(
      name="simple_vqa", model=model, input_keys=("video", "motion"),
      init_inputs=init_inputs(config.model),
      loss_fn=simple_vqa_loss.make_loss_fn(model, config.loss), predict_fn=predict)


def build(config: ml_collections.ConfigDict, model: nn.Module | None = None) -> Family:
  """The family of `config.model` (its module built from the config unless `model` is given).

  Its loss and predict functions trace the model's products at `model.matmul_precision`.
  """
  model = model or build_model(config.model)
  family = (_simple_vqa if family_name(config.model) == "simple_vqa" else _fast_vqa)(config, model)
  matmul = config.model.get("matmul_precision", "default")
  return dataclasses.replace(
      family, loss_fn=perturb_precision.with_matmul_precision(family.loss_fn, matmul),
      predict_fn=perturb_precision.with_matmul_precision(family.predict_fn, matmul))


def perturbed_pass_options(config: ml_collections.ConfigDict) -> dict:
  """`compute_dtype` and `float32_loss_fn` of the train step for `config.perturb.precision`.

  float32_loss_fn is the family's loss with the model in float32 ('float32' precision with a
  lower compute dtype; None otherwise).
  """
  compute_dtype = jnp.dtype(config.model.dtype)
  float32_loss_fn = None
  precision = perturb_config.resolve_precision(config.perturb.get("precision", "auto"),
                                               compute_dtype)
  if precision == "float32" and compute_dtype != jnp.float32:
    float32_config = ml_collections.ConfigDict(config.to_dict())
    float32_config.model.dtype = "float32"
    float32_loss_fn = build(float32_config).loss_fn
  return {"compute_dtype": compute_dtype, "float32_loss_fn": float32_loss_fn}
