"""FAST-VQA training losses: PLCC loss, pairwise rank loss and their combination (paper §7.5).

All losses see the whole (global) batch: under `jax.jit` with a batch sharded on the `data` axis the
arithmetic is the same as the single-GPU reference, because the batch statistics are global.
"""

import jax
import jax.numpy as jnp
import optax

from vqa_jax.config.choices import LOSSES
from vqa_jax.models.fast_vqa import video_score

_STD_EPS = 1e-8


def _standardize(x: jax.Array) -> jax.Array:
  """z-scores with the population std plus 1e-8, as the reference does."""
  return (x - x.mean()) / (x.std() + _STD_EPS)


def plcc_loss(pred: jax.Array, label: jax.Array) -> jax.Array:
  """PLCC loss ½[mean((p̂−ŷ)²)/4 + mean((ρp̂−ŷ)²)/4] = (1−ρ)/4 + (1−ρ²)/8 up to eps."""
  p = _standardize(pred.astype(jnp.float32).reshape(-1))
  y = _standardize(label.astype(jnp.float32).reshape(-1))
  rho = jnp.mean(p * y)
  return 0.5 * (jnp.mean((p - y) ** 2) / 4 + jnp.mean((rho * p - y) ** 2) / 4)


def rank_loss(pred: jax.Array, label: jax.Array) -> jax.Array:
  """Pairwise hinge on discordant pairs, over B(B−1) ordered pairs, divided by 1 + the max hinge.

  The normaliser is differentiated through (the max is not stopped), exactly as the reference.
  """
  p = pred.astype(jnp.float32).reshape(-1)
  y = label.astype(jnp.float32).reshape(-1)
  b = p.shape[0]
  hinge = jax.nn.relu((p[:, None] - p[None, :]) * jnp.sign(y[None, :] - y[:, None]))
  return jnp.sum(hinge) / b / (b - 1) / (1 + jnp.max(hinge))


def vqa_loss(pred: jax.Array, label: jax.Array, rank_weight: float = 0.3) -> jax.Array:
  """The FAST-VQA objective L = L_plcc + rank_weight · L_rank (reference weight 0.3)."""
  return plcc_loss(pred, label) + rank_weight * rank_loss(pred, label)


def smooth_l1_loss(pred: jax.Array, label: jax.Array) -> jax.Array:
  """PyTorch's SmoothL1Loss (beta 1, mean) of scores against labels: SAMA-IQA's objective."""
  return jnp.mean(optax.losses.huber_loss(pred.astype(jnp.float32).reshape(-1),
                                          label.astype(jnp.float32).reshape(-1), delta=1.0))


def make_loss_fn(model, rank_weight: float, kind: str = "plcc_rank"):
  """loss_fn(params, batch, rng) -> (loss, per-video predictions) in train mode.

  `kind` 'plcc_rank' is PLCC + rank_weight * rank (FAST-VQA); 'smooth_l1' regresses the labels
  (SAMA-IQA). The shape `train_step.make_train_step` expects; `model` returns a quality map.
  """
  if kind not in LOSSES:
    raise ValueError(f"train.loss must be one of {LOSSES}, got {kind!r}")

  def loss_fn(params, batch, rng):
    quality_map = model.apply({"params": params}, batch["video"], train=True, rngs={"dropout": rng})
    pred = video_score(quality_map)
    if kind == "smooth_l1":
      return smooth_l1_loss(pred, batch["label"]), pred
    return vqa_loss(pred, batch["label"], rank_weight), pred

  return loss_fn
