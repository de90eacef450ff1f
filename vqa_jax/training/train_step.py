"""The pure train and eval steps: the perturbed gradient, then the optax update and EMA.

`make_train_step` composes the inner perturbation with the outer optimizer: the gradient comes
from `perturb.value_and_grad` (clean pass, weight perturbation, perturbed pass; paper §1.2), then
`tx.update`, `apply_updates` and the EMA. It returns `step(state, batch, rng) -> (state, metrics)`,
a pure function to `jax.jit` (`jit_sharded` for a data-parallel mesh). `make_population_step` vmaps
the same step over K stacked states of one perturbation kind, one radius per member (a radius
sweep in one program; a sweep over kinds runs one program per kind). With every_k > 1 the gradient
comes from `perturb.every_k`, whose state (the last perturbation) sits beside the optimizer's in
`opt_state` (`ReusingOptState`), as optax keeps a wrapper's state.

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

from typing import Any, Callable, NamedTuple, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vqa_jax import perturb
from vqa_jax.config import perturb_config
from vqa_jax.families.loss_and_predict import LossFn
from vqa_jax.families.loss_and_predict import StatefulLossFn
from vqa_jax.families.loss_and_predict import as_stateful
from vqa_jax.training import optim
from vqa_jax.runtime import sharding

PyTree = Any

PerturbConfig = perturb_config.PerturbConfig
# PerturbConfig fields that all members of a population must share (one program runs them all).
SHARED_FIELDS = ("kind", "reuse_dropout_rng", "pair_dropout_rng", "steps", "every_k", "combine",
                 "precision")
# Metrics only a clean pass measures; every_k reuse steps run none (their value there reads 0).
CLEAN_PASS_METRICS = ("clean_grad_norm",)


@flax.struct.dataclass
class TrainState:
  """Everything a training run carries between steps; a plain pytree (no functions inside)."""

  step: jax.Array
  params: PyTree
  # The optimizer's state; with every_k > 1 a ReusingOptState (the perturbation's state beside it).
  opt_state: PyTree
  ema_params: PyTree
  # Non-parameter model collections, e.g. {'batch_stats': ...}; None for models without any.
  model_state: PyTree = None


class ReusingOptState(NamedTuple):
  """opt_state when every_k > 1: `perturb.every_k`'s state (the last perturbation) and tx's."""

  perturbation: perturb.ReuseState
  optimizer: PyTree


def _reuses(perturb_cfg: PerturbConfig | None) -> bool:
  """Whether the step keeps a perturbation between steps (an active kind with every_k > 1)."""
  return perturb_cfg is not None and perturb_cfg.kind != "none" and perturb_cfg.every_k > 1


def create_train_state(params: PyTree, tx: optax.GradientTransformation,
                       perturb_cfg: PerturbConfig | None = None,
                       model_state: PyTree = None) -> TrainState:
  """A fresh state at step 0 whose EMA starts at the initial parameters (as the reference).

  With every_k > 1 in `perturb_cfg`, opt_state is a ReusingOptState holding the zero perturbation.
  """
  opt_state = tx.init(params)
  if _reuses(perturb_cfg):
    opt_state = ReusingOptState(perturbation=perturb.init_reuse_state(params), optimizer=opt_state)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                    ema_params=jax.tree_util.tree_map(jnp.copy, params),
                    model_state=model_state)


def _make_core(loss_fn: StatefulLossFn, tx: optax.GradientTransformation, cfg: PerturbConfig,
               ema_decay: float, mask: PyTree | None, compute_dtype=jnp.float32,
               float32_loss_fn: StatefulLossFn | None = None):
  """core(state, batch, rng, radius, recompute) -> (state, metrics).

  `loss_fn` is stateful (`as_stateful` wraps a plain one). `cfg` gives the kind ('none': the plain
  step) and the fields in SHARED_FIELDS; `radius` may be traced (per population member), and a
  member with radius 0 updates with its clean gradient, so it equals the plain step.
  """
  options = dict(mask=mask, steps=cfg.steps, has_aux=True, reuse_dropout_rng=cfg.reuse_dropout_rng,
                 pair_dropout_rng=cfg.pair_dropout_rng,
                 precision=cfg.precision, compute_dtype=compute_dtype,
                 float32_loss_fn=float32_loss_fn)
  reuses = _reuses(cfg)

  def core(state, batch, rng, radius, recompute):
    rng = jax.random.fold_in(rng, state.step)
    opt_state = state.opt_state
    if reuses:
      if not isinstance(opt_state, ReusingOptState):
        raise ValueError("every_k > 1 keeps the last perturbation in opt_state; build the state "
                         "with create_train_state(params, tx, perturb_cfg)")
      (loss, (_, model_state)), grads, info, reuse_state = perturb.every_k(
          loss_fn, cfg.kind, radius=radius, k=cfg.every_k, **options).apply(
              state.params, opt_state.perturbation, state.model_state, batch, rng=rng,
              recompute=recompute)
    else:
      (loss, (_, model_state)), grads, info = perturb.value_and_grad(
          loss_fn, cfg.kind, radius=radius, combine=cfg.combine, **options)(
              state.params, state.model_state, batch, rng=rng)
    # The clean pass's model state; on reuse steps the only (perturbed) pass's (module docstring).
    updates, tx_state = tx.update(grads, opt_state.optimizer if reuses else opt_state,
                                  state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(
        step=state.step + 1, params=params, model_state=model_state,
        opt_state=ReusingOptState(reuse_state, tx_state) if reuses else tx_state,
        ema_params=optim.ema_update(state.ema_params, params, ema_decay))
    metrics = {"loss": loss, "clean_grad_norm": optax.tree.norm(info["clean_grads"]),
               "grad_norm": optax.tree.norm(grads), "param_norm": optax.tree.norm(params)}
    if cfg.kind != "none":
      metrics.update(perturbed_loss=info["perturbed_loss"],
                     perturbation_norm=info["perturbation_norm"],
                     realised_cosine=info["realised_cosine"],
                     realised_norm_ratio=info["realised_norm_ratio"])
    if reuses:
      metrics["recomputed"] = info["recomputed"]
    return new_state, metrics

  return core


def logged_metrics(metrics: dict) -> dict:
  """A step's metrics on the host, less CLEAN_PASS_METRICS on every_k reuse steps (`recomputed` 0).

  The decision is one per step (a population's members recompute together).
  """
  host = jax.device_get(metrics)
  if "recomputed" in host and not np.any(host["recomputed"]):
    host = {k: v for k, v in host.items() if k not in CLEAN_PASS_METRICS}
  return host


def _stateful(loss_fn, stateful: bool) -> StatefulLossFn:
  """`loss_fn` in the stateful form (`stateful` says which form it is in)."""
  return loss_fn if stateful else as_stateful(loss_fn)


def make_train_step(loss_fn: LossFn | StatefulLossFn, tx: optax.GradientTransformation,
                    perturb_cfg: PerturbConfig, ema_decay: float, mask: PyTree | None = None,
                    *, stateful: bool = False, compute_dtype=jnp.float32,
                    float32_loss_fn: LossFn | StatefulLossFn | None = None):
  """Builds `step(state, batch, rng) -> (state, metrics)`.

  With a perturbation the optimizer sees only the gradient at the perturbed point w + r (the clean
  gradient sets the AWP direction and is then discarded, unless `combine` > 0), evaluated with a
  fresh dropout key, and the update is applied at the unperturbed w, exactly as the reference.
  An inactive config (kind 'none' or radius 0) gives the plain one-pass step. `mask` defaults to
  `perturb.weight_mask(params)`. Metrics: loss (clean; on every_k reuse steps, where no clean pass
  runs, the perturbed loss), perturbed_loss, perturbation_norm, realised_cosine,
  realised_norm_ratio (perturb_precision.realised_metrics in `compute_dtype`, the model's),
  clean_grad_norm (0 on every_k reuse steps, where no clean pass runs: log `logged_metrics`, which
  drops it there), grad_norm, param_norm, and with every_k > 1 `recomputed`. With
  `stateful=True`, `loss_fn` (and `float32_loss_fn`, the same loss with the model in float32,
  which perturb precision 'float32' needs with a lower compute dtype) is a `StatefulLossFn` and
  the new `model_state` is kept as the module docstring says.
  """
  if not perturb_cfg.active and not _reuses(perturb_cfg):  # (the state's layout is kept)
    perturb_cfg = PerturbConfig("none", 0.0, perturb_cfg.reuse_dropout_rng)
  core = _make_core(_stateful(loss_fn, stateful), tx, perturb_cfg, ema_decay, mask,
                    compute_dtype, _stateful(float32_loss_fn, stateful) if float32_loss_fn else None)

  def step(state: TrainState, batch: dict, rng: jax.Array):
    return core(state, batch, rng, perturb_cfg.radius, None)

  return step


def _shared_config(perturb_cfgs: Sequence[PerturbConfig]) -> PerturbConfig:
  """The first config, after checking that all agree on SHARED_FIELDS."""
  for cfg in perturb_cfgs[1:]:
    for name in SHARED_FIELDS:
      if getattr(cfg, name) != getattr(perturb_cfgs[0], name):
        raise ValueError(f"population members must share perturbation {name}: "
                         f"{getattr(perturb_cfgs[0], name)} != {getattr(cfg, name)}"
                         + (" (one population per kind)" if name == "kind" else ""))
  return perturb_cfgs[0]


def make_population_step(loss_fn: LossFn | StatefulLossFn, tx: optax.GradientTransformation,
                         perturb_cfgs: Sequence[PerturbConfig], ema_decay: float,
                         mask: PyTree | None = None, *, stateful: bool = False,
                         compute_dtype=jnp.float32,
                         float32_loss_fn: LossFn | StatefulLossFn | None = None):
  """Builds `step(states, batch, rng) -> (states, metrics)` over K stacked states (`stack_states`).

  Member i trains with perturb_cfgs[i] on the same batch with the same rng, so it follows the
  single run `make_train_step(..., perturb_cfgs[i])` from the same state. Members differ in their
  radius only (SHARED_FIELDS, the kind among them, are one program's): a sweep over kinds runs
  one population per kind. Every metric gets a leading member axis. `compute_dtype` and
  `float32_loss_fn` as in `make_train_step`.
  """
  cfgs = tuple(perturb_cfgs)
  if not cfgs:
    raise ValueError("a population needs at least one member")
  shared = _shared_config(cfgs)
  radii = jnp.asarray([c.radius for c in cfgs], jnp.float32)
  core = _make_core(_stateful(loss_fn, stateful), tx, shared, ema_decay, mask, compute_dtype,
                    _stateful(float32_loss_fn, stateful) if float32_loss_fn else None)

  def step(states: TrainState, batch: dict, rng: jax.Array):
    # One decision for all members, taken outside the vmap so that only one branch runs.
    recompute = (states.opt_state.perturbation.count[0] % shared.every_k == 0
                 if _reuses(shared) else None)
    member = lambda state, radius: core(state, batch, rng, radius, recompute)
    return jax.vmap(member)(states, radii)

  return step


def stack_states(states: Sequence[TrainState]) -> TrainState:
  """States of one structure as one state whose leaves have a leading member axis."""
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def jit_sharded(step: Callable, mesh: jax.sharding.Mesh):
  """jax.jit of `step(state, batch, rng)`: batch split on `data`, rest replicated, state donated."""
  repl, data = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  return jax.jit(step, in_shardings=(repl, data, repl), out_shardings=(repl, repl),
                 donate_argnums=0)
