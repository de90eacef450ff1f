"""The pure train and eval steps: clean pass, weight perturbation, perturbed pass, optax update.

`make_train_step` is the single composition point of the inner perturbation (paper §1.2, library
in `perturb.py`) with the outer optimizer: it returns `step(state, batch, rng) -> (state, metrics)`,
a pure function to `jax.jit` (`jit_sharded` for a data-parallel mesh). `make_population_step` vmaps
the same step over K stacked states, one perturbation config per member, for radius sweeps.

Model state (non-parameter Flax collections such as BatchNorm's `batch_stats`) lives in
`TrainState.model_state` (None for models without any, e.g. FAST-VQA). A loss that updates it is
passed with `stateful=True` as `loss_fn(params, model_state, batch, rng) -> (loss, (predictions,
new_model_state))`; the plain `loss_fn(params, batch, rng) -> (loss, predictions)` keeps the state
as it is. Which pass's new state is kept (the paper's "BatchNorm statistics updated once per step"
under AWP; the reference SimpleVQA updates them in both passes, §11 j):

* plain step: its one pass;
* perturbed step: the CLEAN pass (the ascent and perturbed passes start from the same old state and
  their new states are discarded), so running statistics are never computed at perturbed weights;
* every_k reuse steps (no clean pass): the step's only pass, the perturbed one, so the statistics
  still advance once per step.
"""

import dataclasses
from typing import Any, Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from vqa_jax import optim
from vqa_jax import perturb
from vqa_jax import sharding

PyTree = Any
# loss_fn(params, batch, rng) -> (loss, predictions)
LossFn = Callable[[PyTree, dict, jax.Array], tuple[jax.Array, jax.Array]]
# stateful loss_fn(params, model_state, batch, rng) -> (loss, (predictions, new model_state))
StatefulLossFn = Callable[[PyTree, PyTree, dict, jax.Array],
                          tuple[jax.Array, tuple[jax.Array, PyTree]]]

PERTURBATION_KINDS = ("none",) + perturb.KINDS
# PerturbConfig fields that all members of a population must share (one program runs them all).
SHARED_FIELDS = ("reuse_dropout_rng", "steps", "every_k", "combine")


@flax.struct.dataclass
class TrainState:
  """Everything a training run carries between steps; a plain pytree (no functions inside)."""

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  ema_params: PyTree
  # The last perturbation (a float32 delta shaped like params) when every_k > 1, else None.
  perturb_state: PyTree = None
  # Non-parameter model collections, e.g. {'batch_stats': ...}; None for models without any.
  model_state: PyTree = None


@dataclasses.dataclass(frozen=True)
class PerturbConfig:
  """How the inner step perturbs the weights (see perturb.py for the kinds).

  kind: 'none' | 'awp' | 'rwp' | 'sam' | 'asam'. gamma: layer-relative radius of awp/rwp.
  rho: absolute radius of sam/asam. steps: ascent steps of radius/steps, each projected back.
  every_k: recompute the perturbation every k steps and reuse the last one in between.
  combine: the update gradient is (1 − combine)·g_perturbed + combine·g_clean (0: the reference).
  """

  kind: str = "awp"
  gamma: float = 1e-4
  # True: every pass uses the clean pass's dropout key; the reference draws fresh masks per pass.
  reuse_dropout_rng: bool = False
  rho: float = 0.05
  steps: int = 1
  every_k: int = 1
  combine: float = 0.0

  def __post_init__(self):
    if self.kind not in PERTURBATION_KINDS:
      raise ValueError(f"perturbation kind {self.kind!r} not in {PERTURBATION_KINDS}")
    for name in ("gamma", "rho"):
      if not getattr(self, name) >= 0:
        raise ValueError(f"perturbation {name} must be >= 0, got {getattr(self, name)}")
    for name in ("steps", "every_k"):
      if getattr(self, name) < 1:
        raise ValueError(f"perturbation {name} must be >= 1, got {getattr(self, name)}")
    if not 0 <= self.combine <= 1:
      raise ValueError(f"perturbation combine must be in [0, 1], got {self.combine}")
    if self.kind == "rwp" and self.steps > 1:
      raise ValueError("perturbation steps > 1 needs a gradient direction; rwp has none")
    if self.combine and self.every_k > 1:
      raise ValueError("perturbation combine > 0 needs the clean gradient of every step; "
                       "every_k > 1 skips it between recomputations")

  @classmethod
  def from_config(cls, perturb_cfg: ml_collections.ConfigDict) -> "PerturbConfig":
    """The PerturbConfig of a config's `perturb` section; absent fields keep their defaults."""
    return cls(**{f.name: type(f.default)(perturb_cfg[f.name])
                  for f in dataclasses.fields(cls) if f.name in perturb_cfg})

  @property
  def radius(self) -> float:
    """gamma for the layer-relative kinds, rho for sam/asam, 0 for 'none'."""
    if self.kind == "none":
      return 0.0
    return self.gamma if self.kind in perturb.RELATIVE_KINDS else self.rho

  @property
  def active(self) -> bool:
    """Whether the step runs the second (perturbed) pass at all."""
    return self.radius > 0


def init_perturb_state(params: PyTree, perturb_cfg: PerturbConfig | None) -> PyTree:
  """A zero last-perturbation when the config reuses perturbations (every_k > 1), else None."""
  if perturb_cfg is None or perturb_cfg.every_k == 1:
    return None
  return jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, jnp.float32), params)


def create_train_state(params: PyTree, tx: optax.GradientTransformation,
                       perturb_cfg: PerturbConfig | None = None,
                       model_state: PyTree = None) -> TrainState:
  """A fresh state at step 0 whose EMA starts at the initial parameters (as the reference)."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    ema_params=jax.tree_util.tree_map(jnp.copy, params),
                    perturb_state=init_perturb_state(params, perturb_cfg),
                    model_state=model_state)


def as_stateful(loss_fn: LossFn) -> StatefulLossFn:
  """A plain loss in the stateful form; the model state passes through unchanged."""

  def stateful(params, model_state, batch, rng):
    loss, preds = loss_fn(params, batch, rng)
    return loss, (preds, model_state)

  return stateful


def _all(*preds):
  """Logical and of Python bools and traced booleans; stays a Python bool whenever it can."""
  if any(p is False for p in preds):
    return False
  traced = [p for p in preds if p is not True]
  if not traced:
    return True
  out = traced[0]
  for p in traced[1:]:
    out = jnp.logical_and(out, p)
  return out


def _where(pred, on_true: PyTree, on_false: PyTree) -> PyTree:
  """A Python bool picks one tree; a traced boolean selects leaf by leaf."""
  if isinstance(pred, bool):
    return on_true if pred else on_false
  return jax.tree_util.tree_map(lambda a, b: jax.lax.select(pred, a, b), on_true, on_false)


def _recompute(step: jax.Array, every_k: int):
  """Whether this step computes a fresh perturbation (True for every_k = 1)."""
  return True if every_k == 1 else step % every_k == 0


def _zeros_like_output(fn: Callable, *args) -> PyTree:
  """Zeros shaped like fn(*args), found without running it."""
  return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, *args))


def _make_core(loss_fn: StatefulLossFn, tx: optax.GradientTransformation, cfg: PerturbConfig,
               kinds: tuple[str, ...], ema_decay: float, mask: PyTree | None):
  """core(state, batch, rng, radius, kind_index, recompute) -> (state, metrics).

  `loss_fn` is stateful (`as_stateful` wraps a plain one). `cfg` gives the fields in
  SHARED_FIELDS; `kinds` the perturbation kinds `kind_index` selects from (empty: the plain step).
  `radius` and `kind_index` may be traced (per population member); a member with radius 0 updates
  with its clean gradient, so it equals the plain step.
  """
  value_and_grad = jax.value_and_grad(loss_fn, has_aux=True)

  def grad_fn(params, model_state, batch, rng):
    """((loss, new model state), grads); the predictions are not needed here."""
    (loss, (_, new_model_state)), grads = value_and_grad(params, model_state, batch, rng)
    return (loss, new_model_state), grads

  def update(state, grads, metrics, perturb_state, model_state):
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=optim.ema_update(state.ema_params, params, ema_decay),
                              perturb_state=perturb_state, model_state=model_state)
    metrics.update(grad_norm=optax.tree.norm(grads), param_norm=optax.tree.norm(params))
    return new_state, metrics

  def core(state, batch, rng, radius, kind_index, recompute):
    rng = jax.random.fold_in(rng, state.step)
    clean_rng, perturbed_rng, noise_rng = jax.random.split(rng, 3)
    params, old_model_state = state.params, state.model_state
    if not kinds:
      (loss, model_state), grads = grad_fn(params, old_model_state, batch, clean_rng)
      return update(state, grads, {"loss": loss, "clean_grad_norm": optax.tree.norm(grads)},
                    state.perturb_state, model_state)
    if cfg.every_k > 1 and state.perturb_state is None:
      raise ValueError("every_k > 1 keeps the last perturbation in TrainState.perturb_state; "
                       "build the state with create_train_state(params, tx, perturb_cfg)")
    leaf_mask = perturb.weight_mask(params) if mask is None else mask
    pert = perturb.switch([perturb.make_perturbation(k, leaf_mask) for k in kinds], kind_index)
    fresh_rng = clean_rng if cfg.reuse_dropout_rng else perturbed_rng

    def fresh():
      (clean_loss, clean_model_state), clean_grads = grad_fn(params, old_model_state, batch,
                                                             clean_rng)
      direction = pert.direction(params, clean_grads, noise_rng)
      # Intermediate ascent points (steps > 1) get their own fresh keys unless keys are reused.
      ascent_rng = lambda i: fresh_rng if cfg.reuse_dropout_rng else jax.random.fold_in(fresh_rng, i)
      ascent_grad = lambda p, i: grad_fn(p, old_model_state, batch, ascent_rng(i))[1]
      delta = perturb.ascent(pert, params, direction, ascent_grad, radius, cfg.steps, leaf_mask)
      return clean_loss, clean_grads, delta, fresh_rng, clean_model_state

    def reuse():
      # The last perturbation, projected onto the current weights' feasible set. There is no clean
      # pass: the step's only pass uses the clean pass's dropout key.
      (no_loss, _), no_grads = _zeros_like_output(
          lambda: grad_fn(params, old_model_state, batch, clean_rng))
      return (no_loss, no_grads, pert.project(params, state.perturb_state, radius), clean_rng,
              old_model_state)

    if recompute is True:
      clean_loss, clean_grads, delta, pass_rng, clean_model_state = fresh()
    else:
      clean_loss, clean_grads, delta, pass_rng, clean_model_state = jax.lax.cond(
          recompute, fresh, reuse)
    perturbed = jax.lax.stop_gradient(perturb.apply_delta(params, delta, leaf_mask))
    (perturbed_loss, perturbed_model_state), grads = grad_fn(perturbed, old_model_state, batch,
                                                             pass_rng)
    if cfg.combine:
      grads = jax.tree_util.tree_map(lambda p, c: (1 - cfg.combine) * p + cfg.combine * c,
                                     grads, clean_grads)
    grads = _where(_all(radius == 0, recompute), clean_grads, grads)
    metrics = {"loss": _where(recompute, clean_loss, perturbed_loss),
               "clean_grad_norm": optax.tree.norm(clean_grads),
               "perturbed_loss": perturbed_loss, "perturbation_norm": perturb.tree_norm(delta)}
    if cfg.every_k > 1:
      metrics["recomputed"] = jnp.asarray(recompute, jnp.float32)
    # The clean pass's model state; on reuse steps the only (perturbed) pass's (module docstring).
    model_state = _where(recompute, clean_model_state, perturbed_model_state)
    return update(state, grads, metrics, delta if cfg.every_k > 1 else state.perturb_state,
                  model_state)

  return core


def _stateful(loss_fn, stateful: bool) -> StatefulLossFn:
  """`loss_fn` in the stateful form (`stateful` says which form it is in)."""
  return loss_fn if stateful else as_stateful(loss_fn)


def make_train_step(loss_fn: LossFn | StatefulLossFn, tx: optax.GradientTransformation,
                    perturb_cfg: PerturbConfig, ema_decay: float, mask: PyTree | None = None,
                    *, stateful: bool = False):
  """Builds `step(state, batch, rng) -> (state, metrics)`.

  With a perturbation the optimizer sees only the gradient at the perturbed point w + r (the clean
  gradient sets the AWP direction and is then discarded, unless `combine` > 0), evaluated with a
  fresh dropout key, and the update is applied at the unperturbed w, exactly as the reference.
  An inactive config (kind 'none' or radius 0) gives the plain one-pass step. `mask` defaults to
  `perturb.weight_mask(params)`. Metrics: loss (clean; on every_k reuse steps, where no clean pass
  runs, the perturbed loss), perturbed_loss, perturbation_norm, clean_grad_norm, grad_norm,
  param_norm, and with every_k > 1 `recomputed`. With `stateful=True`, `loss_fn` is a
  `StatefulLossFn` and the new `model_state` is kept as the module docstring says.
  """
  kinds = (perturb_cfg.kind,) if perturb_cfg.active else ()
  core = _make_core(_stateful(loss_fn, stateful), tx, perturb_cfg, kinds, ema_decay, mask)

  def step(state: TrainState, batch: dict, rng: jax.Array):
    return core(state, batch, rng, perturb_cfg.radius, 0,
                _recompute(state.step, perturb_cfg.every_k))

  return step


def _shared_config(perturb_cfgs: Sequence[PerturbConfig]) -> PerturbConfig:
  """The first config, after checking that all agree on SHARED_FIELDS."""
  for cfg in perturb_cfgs[1:]:
    for name in SHARED_FIELDS:
      if getattr(cfg, name) != getattr(perturb_cfgs[0], name):
        raise ValueError(f"population members must share perturbation {name}: "
                         f"{getattr(perturb_cfgs[0], name)} != {getattr(cfg, name)}")
  return perturb_cfgs[0]


def make_population_step(loss_fn: LossFn | StatefulLossFn, tx: optax.GradientTransformation,
                         perturb_cfgs: Sequence[PerturbConfig], ema_decay: float,
                         mask: PyTree | None = None, *, stateful: bool = False):
  """Builds `step(states, batch, rng) -> (states, metrics)` over K stacked states (`stack_states`).

  Member i trains with perturb_cfgs[i] (kinds and radii may differ; SHARED_FIELDS may not) on the
  same batch with the same rng, so it follows the single run `make_train_step(..., perturb_cfgs[i])`
  from the same state. Every metric gets a leading member axis.
  """
  cfgs = tuple(perturb_cfgs)
  if not cfgs:
    raise ValueError("a population needs at least one member")
  shared = _shared_config(cfgs)
  kinds = tuple(k for k in perturb.KINDS if any(c.active and c.kind == k for c in cfgs))
  radii = jnp.asarray([c.radius for c in cfgs], jnp.float32)
  kind_index = jnp.asarray([kinds.index(c.kind) if c.kind in kinds else 0 for c in cfgs], jnp.int32)
  core = _make_core(_stateful(loss_fn, stateful), tx, shared, kinds, ema_decay, mask)

  def step(states: TrainState, batch: dict, rng: jax.Array):
    recompute = _recompute(states.step[0], shared.every_k)
    member = lambda state, radius, index: core(state, batch, rng, radius, index, recompute)
    return jax.vmap(member)(states, radii, kind_index)

  return step


def stack_states(states: Sequence[TrainState]) -> TrainState:
  """States of one structure as one state whose leaves have a leading member axis."""
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def member_state(states: TrainState, i: int) -> TrainState:
  """Member i of stacked states."""
  return jax.tree_util.tree_map(lambda x: x[i], states)


def jit_sharded(step: Callable, mesh: jax.sharding.Mesh):
  """jax.jit of `step(state, batch, rng)`: batch split on `data`, rest replicated, state donated."""
  repl, data = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  return jax.jit(step, in_shardings=(repl, data, repl), out_shardings=(repl, repl),
                 donate_argnums=0)


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
