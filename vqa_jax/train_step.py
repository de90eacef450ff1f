"""The pure train and eval steps: clean pass, optional weight perturbation, perturbed pass, optax update.

`make_train_step` is the single composition point of the inner perturbation (paper §1.2) with the
outer optimizer: it returns `step(state, batch, rng) -> (state, metrics)`, a pure function to `jax.jit`.
"""

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from vqa_jax import optim
from vqa_jax import perturb

PyTree = Any
# loss_fn(params, batch, rng) -> (loss, predictions)
LossFn = Callable[[PyTree, dict, jax.Array], tuple[jax.Array, jax.Array]]

PERTURBATION_KINDS = ("none", "awp", "rwp")


@flax.struct.dataclass
class TrainState:
  """Everything a training run carries between steps; a plain pytree (no functions inside)."""

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree


def create_train_state(params: PyTree, tx: optax.GradientTransformation) -> TrainState:
  """A fresh state at step 0 whose EMA starts at the initial parameters (as the reference)."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    ema_params=jax.tree_util.tree_map(jnp.copy, params))


@dataclasses.dataclass(frozen=True)
class PerturbConfig:
  """How the inner step perturbs the weights: kind 'none' | 'awp' | 'rwp' with radius gamma."""

  kind: str = "awp"
  gamma: float = 1e-4
  reuse_dropout_rng: bool = False  # the reference draws fresh dropout masks for the perturbed pass

  def __post_init__(self):
    if self.kind not in PERTURBATION_KINDS:
      raise ValueError(f"perturbation kind {self.kind!r} not in {PERTURBATION_KINDS}")
    if self.gamma < 0:
      raise ValueError(f"perturbation gamma must be >= 0, got {self.gamma}")

  @property
  def active(self) -> bool:
    """Whether the step runs the second (perturbed) pass at all."""
    return self.kind != "none" and self.gamma > 0


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, perturb_cfg: PerturbConfig,
                    ema_decay: float, mask: PyTree | None = None):
  """Builds `step(state, batch, rng) -> (state, metrics)`.

  With a perturbation the optimizer sees only the gradient at the perturbed point w + r (the clean
  gradient sets the AWP direction and is then discarded), evaluated with a fresh dropout key, and
  the update is applied at the unperturbed w, exactly as the reference. `mask` defaults to
  `perturb.weight_mask(params)`.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(state: TrainState, batch: dict, rng: jax.Array):
    rng = jax.random.fold_in(rng, state.step)
    clean_rng, perturbed_rng, noise_rng = jax.random.split(rng, 3)
    (clean_loss, _), grads = grad_fn(state.params, batch, clean_rng)
    metrics = {"loss": clean_loss, "clean_grad_norm": optax.tree.norm(grads)}
    if perturb_cfg.active:
      leaf_mask = perturb.weight_mask(state.params) if mask is None else mask
      if perturb_cfg.kind == "awp":
        perturbed = perturb.awp(state.params, grads, perturb_cfg.gamma, leaf_mask)
      else:
        perturbed = perturb.rwp(state.params, noise_rng, perturb_cfg.gamma, leaf_mask)
      perturbed = jax.lax.stop_gradient(perturbed)
      pass_rng = clean_rng if perturb_cfg.reuse_dropout_rng else perturbed_rng
      (perturbed_loss, _), grads = grad_fn(perturbed, batch, pass_rng)
      delta = jax.tree_util.tree_map(jnp.subtract, perturbed, state.params)
      metrics.update(perturbed_loss=perturbed_loss, perturbation_norm=perturb.tree_norm(delta))
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=optim.ema_update(state.ema_params, params, ema_decay))
    metrics.update(grad_norm=optax.tree.norm(grads), param_norm=optax.tree.norm(params))
    return new_state, metrics

  return step


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
