"""SimpleVQA's training loss: L1 + pairwise rank loss on "hard" pairs (paper §6.3), argument order fixed.

The reference (`L1RankLoss.forward(preds, gts)`) is called as `criterion(labels, outputs)`, i.e.
with its arguments swapped. L1 is symmetric, but the rank term then takes its pair masks and signs
from the *predictions* and its differences from the *labels*, so it is piecewise constant in the
predictions and has zero gradient: the reference effectively trains on pure L1. Here
`l1_rank_loss(pred, label)` is the intended order, whose rank term does train the model:

  L = l1_weight * mean|p - y| + rank_weight * Σ_ij m_ij relu(-sign(y_j - y_i) (p_j - p_i)) / (Σ_ij m_ij + 1e-8)

with the hard-pair mask m_ij = 1[0 < |y_j - y_i| < hard_threshold] (reference threshold 1, on the
label scale). Like losses.py, everything is over the whole (global) batch.
"""

import jax
import jax.numpy as jnp

_COUNT_EPS = 1e-8


def hard_pair_rank_loss(pred: jax.Array, label: jax.Array, hard_threshold: float = 1.0) -> jax.Array:
  """Mean hinge on pairs whose labels differ by less than `hard_threshold` and are ordered wrongly."""
  p = pred.astype(jnp.float32).reshape(-1)
  y = label.astype(jnp.float32).reshape(-1)
  label_diff = y[None, :] - y[:, None]  # [i, j] = y_j - y_i
  pred_diff = p[None, :] - p[:, None]
  hard = jnp.logical_and(jnp.abs(label_diff) < hard_threshold, jnp.abs(label_diff) > 0)
  hinge = jnp.where(hard, jax.nn.relu(-jnp.sign(label_diff) * pred_diff), 0.0)
  return jnp.sum(hinge) / (jnp.sum(hard) + _COUNT_EPS)


def l1_rank_loss(pred: jax.Array, label: jax.Array, *, l1_weight: float = 1.0,
                 rank_weight: float = 1.0, hard_threshold: float = 1.0) -> jax.Array:
  """SimpleVQA's L1 + rank loss with (pred, label) in the intended order (reference weights 1, 1)."""
  p = pred.astype(jnp.float32).reshape(-1)
  y = label.astype(jnp.float32).reshape(-1)
  l1 = jnp.mean(jnp.abs(p - y))
  return l1_weight * l1 + rank_weight * hard_pair_rank_loss(p, y, hard_threshold)


def make_loss_fn(model, loss_cfg):
  """Stateful loss_fn(params, model_state, batch, rng) -> (loss, (preds, new model_state)).

  The form `train_step.make_train_step(..., stateful=True)` expects. `model` is a `SimpleVQA`
  (frames `batch['video']`, motion `batch['motion']`) run in train mode, so BatchNorm normalises
  with batch statistics and returns updated running statistics; a video's prediction is the mean
  of its per-frame scores. `loss_cfg` is the config's `loss` section: l1_weight, hard_rank_weight
  (`l1_rank_loss`'s rank_weight) and hard_threshold.
  """
  weights = dict(l1_weight=float(loss_cfg.l1_weight),
                 rank_weight=float(loss_cfg.hard_rank_weight),
                 hard_threshold=float(loss_cfg.hard_threshold))

  def loss_fn(params, model_state, batch, rng):
    del rng  # SimpleVQA has no dropout.
    scores, new_state = model.apply({"params": params, **model_state}, batch["video"],
                                    batch["motion"], train=True, mutable=list(model_state))
    pred = jnp.mean(scores, axis=1)
    return l1_rank_loss(pred, batch["label"], **weights), (pred, dict(new_state))

  return loss_fn
