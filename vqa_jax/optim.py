"""The reference optimizer in optax: AdamW with backbone/head learning-rate groups and the FAST-VQA
warmup + cosine schedule (paper §7.2–7.3)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

PyTree = Any


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


def group_learning_rates(train_cfg: ml_collections.ConfigDict) -> dict[str, optax.Schedule]:
  """{'backbone': lr_b(step), 'head': lr_h(step)}: base rates times the reference multiplier."""
  multiplier = reference_schedule(train_cfg.warmup_steps, train_cfg.cosine_steps)
  lr = train_cfg.learning_rate
  return {"backbone": lambda k: lr * train_cfg.backbone_lr_mult * multiplier(k),
          "head": lambda k: lr * multiplier(k)}


def learning_rates(train_cfg: ml_collections.ConfigDict, step: int) -> dict[str, float]:
  """The learning rates that the update of optimizer step `step` (0-based) used, for logging."""
  rates = group_learning_rates(train_cfg)
  frozen = step < train_cfg.get("freeze_backbone_steps", 0)
  return {"lr_backbone": 0.0 if frozen else float(rates["backbone"](step)),
          "lr_head": float(rates["head"](step))}


def make_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW(β=(0.9, 0.999), eps 1e-8) with lr_head = lr and lr_backbone = lr·backbone_lr_mult.

  Decoupled weight decay applies to every leaf, scaled by the group's learning rate (as PyTorch
  AdamW).
  With `freeze_backbone_steps` = P > 0 (linear probe, paper §7.6) the backbone is frozen for the
  first P steps (`freeze_for`), then follows the same global schedule as the head.
  """
  rates = group_learning_rates(train_cfg)
  frozen_steps = int(train_cfg.get("freeze_backbone_steps", 0))

  def adamw(schedule):
    return optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=train_cfg.weight_decay)

  # The frozen wrapper does not advance the backbone's own count, so its schedule is shifted by P.
  backbone = adamw(lambda k: rates["backbone"](k + frozen_steps))
  return optax.multi_transform(
      {"backbone": freeze_for(frozen_steps, backbone), "head": adamw(rates["head"])},
      group_labels)


def ema_update(ema_params: PyTree, params: PyTree, decay: float) -> PyTree:
  """θ_ema ← decay·θ_ema + (1 − decay)·θ over parameters (paper §7.4)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
