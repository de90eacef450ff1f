"""The reference optimizer in optax: AdamW with backbone/head learning-rate groups and the FAST-VQA
warmup + cosine schedule (paper §7.2–7.3)."""

from typing import Any

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


def make_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW(β=(0.9, 0.999), eps 1e-8) with lr_head = lr and lr_backbone = lr·backbone_lr_mult.

  Decoupled weight decay applies to every leaf, scaled by the group's learning rate (as PyTorch AdamW).
  """
  multiplier = reference_schedule(train_cfg.warmup_steps, train_cfg.cosine_steps)

  def adamw(base_lr):
    return optax.adamw(lambda k: base_lr * multiplier(k), b1=0.9, b2=0.999, eps=1e-8,
                       weight_decay=train_cfg.weight_decay)

  lr = train_cfg.learning_rate
  return optax.multi_transform(
      {"backbone": adamw(lr * train_cfg.backbone_lr_mult), "head": adamw(lr)}, group_labels)


def ema_update(ema_params: PyTree, params: PyTree, decay: float) -> PyTree:
  """θ_ema ← decay·θ_ema + (1 − decay)·θ over parameters (paper §7.4)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
