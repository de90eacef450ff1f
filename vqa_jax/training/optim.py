"""The reference optimizers in optax, with backbone/head learning-rate groups (paper §7.2–7.3, §6.3).

`train.optimizer`: 'adamw' (FAST-VQA: decoupled weight decay scaled by the learning rate, as
PyTorch AdamW) or 'adam_l2' (SimpleVQA: PyTorch Adam's coupled L2, `weight_decay * param` added to
the gradient before the Adam moments, `optax.add_decayed_weights` before `optax.adam`).
`train.schedule`: 'warmup_cosine' (FAST-VQA's warmup + cosine multiplier, `reference_schedule`) or
'step' (PyTorch StepLR: the rate is multiplied by `lr_step_gamma` every `lr_step_every` steps,
`optax.exponential_decay(..., staircase=True)`; the configs convert StepLR's epochs to steps).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from vqa_jax.config.choices import OPTIMIZERS
from vqa_jax.config.choices import SCHEDULES
from vqa_jax.config.validation import schedule_steps

PyTree = Any


def describe_schedule(train_cfg: ml_collections.ConfigDict) -> str:
  """One line naming the learning-rate schedule of `train_cfg` and its step counts."""
  name = train_cfg.schedule
  if name == "step":
    return (f"schedule step: lr x {train_cfg.lr_step_gamma} every {train_cfg.lr_step_every} "
            f"steps, {train_cfg.steps} steps")
  warmup, cosine = schedule_steps(train_cfg)
  end = float(reference_schedule(warmup, cosine)(int(train_cfg.steps) - 1))
  return (f"schedule warmup_cosine: warmup {warmup} steps, cosine length {cosine}, "
          f"{train_cfg.steps} steps; last step at {end:.3g} x peak lr")


def reference_schedule(warmup_steps: int, cosine_steps: int) -> optax.Schedule:
  """Multiplier k/W for k ≤ W, then 0.5·(1 + cos(π·(k − W)/M)); M is not M − W, as in the reference."""
  warmup = max(int(warmup_steps), 0)
  cosine = max(int(cosine_steps), 1)

  def schedule(count):
    k = jnp.asarray(count, jnp.float32)
    cosine_part = 0.5 * (1.0 + jnp.cos(jnp.pi * (k - warmup) / cosine))
    if not warmup:
      return cosine_part
    return jnp.where(k <= warmup, k / warmup, cosine_part)

  return schedule


def group_labels(params: PyTree) -> PyTree:
  """'backbone' for every leaf under the top-level `backbone` key, 'head' for all others."""
  return {k: jax.tree_util.tree_map(lambda _, k=k: "backbone" if k == "backbone" else "head", v)
          for k, v in params.items()}


class FreezeState(NamedTuple):
  """The step count and the wrapped transformation's state (untouched while frozen)."""

  count: jax.Array
  inner: optax.OptState


def freeze_for(num_steps: int, inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """Zero updates for the first `num_steps` calls, then `inner`, whose state starts fresh then.

  This is PyTorch's frozen parameter group (requires_grad=False, grad None): no update, no weight
  decay, and Adam's step counter (bias correction) starts at the first unfrozen step. `inner`'s
  state is allocated from the start, so the optimizer state keeps one shape throughout.
  """
  if num_steps <= 0:
    return inner

  def init(params):
    return FreezeState(jnp.zeros((), jnp.int32), inner.init(params))

  def update(updates, state, params=None):
    def frozen():
      return jax.tree_util.tree_map(jnp.zeros_like, updates), state.inner

    def active():
      return inner.update(updates, state.inner, params)

    new_updates, new_inner = jax.lax.cond(state.count < num_steps, frozen, active)
    return new_updates, FreezeState(state.count + 1, new_inner)

  return optax.GradientTransformation(init, update)


def step_schedule(every: int, gamma: float) -> optax.Schedule:
  """PyTorch StepLR as a multiplier: gamma ** floor(count / every)."""
  if every <= 0:
    raise ValueError(f"train.lr_step_every must be positive, got {every}")
  return optax.exponential_decay(1.0, transition_steps=int(every), decay_rate=float(gamma),
                                 staircase=True)


def lr_multiplier(train_cfg: ml_collections.ConfigDict) -> optax.Schedule:
  """The configured schedule's multiplier of the base rates (`train.schedule`)."""
  name = train_cfg.schedule
  if name == "warmup_cosine":
    return reference_schedule(*schedule_steps(train_cfg))
  if name == "step":
    return step_schedule(train_cfg.lr_step_every, train_cfg.lr_step_gamma)
  raise ValueError(f"train.schedule must be one of {SCHEDULES}, got {name!r}")


def group_learning_rates(train_cfg: ml_collections.ConfigDict) -> dict[str, optax.Schedule]:
  """{'backbone': lr_b(step), 'head': lr_h(step)}: base rates times the schedule's multiplier."""
  multiplier = lr_multiplier(train_cfg)
  lr = train_cfg.learning_rate
  return {"backbone": lambda k: lr * train_cfg.backbone_lr_mult * multiplier(k),
          "head": lambda k: lr * multiplier(k)}


def learning_rates(train_cfg: ml_collections.ConfigDict, step: int) -> dict[str, float]:
  """The learning rates that the update of optimizer step `step` (0-based) used, for logging."""
  rates = group_learning_rates(train_cfg)
  frozen = step < train_cfg.freeze_backbone_steps
  return {"lr_backbone": 0.0 if frozen else float(rates["backbone"](step)),
          "lr_head": float(rates["head"](step))}


def adam_family(name: str, schedule: optax.Schedule,
                weight_decay: float) -> optax.GradientTransformation:
  """Adam(β=(0.9, 0.999), eps 1e-8) with decoupled ('adamw') or coupled L2 ('adam_l2') decay."""
  if name == "adamw":
    return optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
  if name == "adam_l2":
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8))
  raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """`train.optimizer` with lr_head = lr and lr_backbone = lr·backbone_lr_mult (times the schedule).

  'adamw': decoupled weight decay on every leaf, scaled by the group's learning rate (as PyTorch
  AdamW); 'adam_l2': PyTorch Adam's weight_decay, an L2 term added to the gradient.
  With `freeze_backbone_steps` = P > 0 (linear probe, paper §7.6) the backbone is frozen for the
  first P steps (`freeze_for`), then follows the same global schedule as the head.
  """
  rates = group_learning_rates(train_cfg)
  frozen_steps = int(train_cfg.freeze_backbone_steps)
  name = train_cfg.optimizer
  make = lambda schedule: adam_family(name, schedule, train_cfg.weight_decay)
  # The frozen wrapper does not advance the backbone's own count, so its schedule is shifted by P.
  backbone = make(lambda k: rates["backbone"](k + frozen_steps))
  return optax.multi_transform(
      {"backbone": freeze_for(frozen_steps, backbone), "head": make(rates["head"])},
      group_labels)


def ema_update(ema_params: PyTree, params: PyTree, decay: float) -> PyTree:
  """θ_ema ← decay·θ_ema + (1 − decay)·θ over parameters (paper §7.4)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
