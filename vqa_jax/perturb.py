"""Weight perturbations applied before the outer optimizer update (paper §1.2), as pure functions.

A perturbation kind is three pure functions on parameter pytrees (`Perturbation`):
  direction(params, grads, rng) -> d       the ascent direction (the gradient, or Gaussian noise);
  step(params, d, size) -> delta           one step of length `size` along d;
  project(params, delta, radius) -> delta  delta mapped back into the feasible set of `radius`.
Deltas are float32 trees shaped like the params, zero on leaves outside the mask, and the perturbed
weights are `apply_delta(params, delta, mask)`.

Kinds:
  awp   the reference `WP._attack_step`: per tensor (Frobenius) a step of γ·‖w_l‖ along the
        gradient; feasible set ‖δ_l‖ ≤ γ‖w_l‖ (the ball) and |δ| ≤ γ|w| element-wise (the box).
  rwp   as awp along a standard Gaussian direction.
  sam   an absolute radius ρ on the global norm: δ = ρ·g/‖g‖; feasible set ‖δ‖ ≤ ρ.
  asam  element-wise adaptive SAM with T = |w| + η: δ = ρ·T²g/‖Tg‖; feasible set ‖δ/T‖ ≤ ρ.
A leaf (awp, rwp) or a tree (sam, asam) whose direction has zero or non-finite norm is not moved.
`ascent` runs n steps of radius/n, projecting after each, with fresh gradients in between.

The functional API: `value_and_grad(loss_fn, kind, radius=...)` is `jax.value_and_grad` with the
perturbation inside: `(params, *args, rng) -> (value, grads, info)`, where `value` is the clean
loss (with its aux), `grads` the gradient an optimizer should apply (for 'awp': the gradient at
the perturbed point w + δ, δ the ascent step along the clean gradient) and `info` the perturbed
loss and the perturbation's norm. The train step (`train_step.make_train_step`) is a few lines
around it; any other trainer can call it the same way (README: "AWP in your own train step").
`radius` may be traced, so `jax.vmap` over radii of one kind is a radius sweep in one program.
`every_k(...)` is the same with the perturbation recomputed every k calls and reused in between; its
state (`ReuseState`) lives beside the optimizer's, optax-style (`init` / `apply`).
The module imports only jax, optax and perturb_precision; a run's settings (the config's `perturb`
section) are config/perturb_config.py's `PerturbConfig`, which the train step passes in.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from vqa_jax import perturb_precision

__all__ = [
    "KINDS", "NONE", "Perturbation", "weight_mask", "full_mask", "apply_delta", "gaussian_like",
    "relative", "global_sam", "adaptive_sam", "make_perturbation", "ascent", "awp",
    "value_and_grad", "value_and_grad_at", "ReuseState", "init_reuse_state", "EveryK", "every_k",
]

PyTree = Any
# grad_fn(perturbed_params, i) -> gradient at the i-th intermediate point of a multi-step ascent.
AscentGradFn = Callable[[PyTree, int], PyTree]

# The kinds that move the weights; `value_and_grad` also takes NONE, the plain gradient
# (config/choices.py PERTURBATION_KINDS is NONE and these, for a config to choose from).
KINDS = ("awp", "rwp", "sam", "asam")
NONE = "none"
# Flax leaf names that correspond to PyTorch parameters whose name contains "weight".
WEIGHT_LEAF_NAMES = frozenset({"kernel", "scale", "embedding"})
RELATIVE_EPS = 1e-6  # the reference's e
GLOBAL_EPS = 1e-12
ASAM_ETA = 0.01  # Kwon et al. 2021


class Perturbation(NamedTuple):
  """One perturbation kind as pure functions (see the module docstring)."""

  direction: Callable[[PyTree, PyTree, jax.Array], PyTree]
  step: Callable[[PyTree, PyTree, Any], PyTree]
  project: Callable[[PyTree, PyTree, Any], PyTree]


def _leaf_name(path) -> str:
  """The last key of a pytree path as a string."""
  last = path[-1]
  for attr in ("key", "name", "idx"):
    if hasattr(last, attr):
      return str(getattr(last, attr))
  return str(last)


def weight_mask(params: PyTree) -> PyTree:
  """True on Dense/Conv kernels, LayerNorm scales and embeddings; False on biases, bias tables."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: _leaf_name(path) in WEIGHT_LEAF_NAMES, params)


def full_mask(params: PyTree) -> PyTree:
  """True on every leaf (plain SAM perturbs all parameters)."""
  return jax.tree_util.tree_map(lambda _: True, params)


def _f32(x: jax.Array) -> jax.Array:
  return x.astype(jnp.float32)


def _norm(x: jax.Array) -> jax.Array:
  return jnp.linalg.norm(_f32(x).reshape(-1))


def _usable(norm: jax.Array) -> jax.Array:
  """Whether a direction with this norm may be followed: non-zero and finite."""
  return jnp.logical_and(norm > 0, jnp.isfinite(norm))


def _shrink_to_ball(x: jax.Array, norm: jax.Array, radius) -> jax.Array:
  """x scaled down to norm `radius` where its `norm` exceeds it (exactly x otherwise)."""
  return x * jnp.where(norm > radius, radius / jnp.where(norm > radius, norm, 1.0), 1.0)


def _masked(fn: Callable[..., jax.Array], mask: PyTree, tree: PyTree, *rest: PyTree) -> PyTree:
  """fn(leaf, *other leaves) on masked leaves; float32 zeros elsewhere."""
  return jax.tree_util.tree_map(
      lambda m, x, *r: fn(x, *r) if m else jnp.zeros(x.shape, jnp.float32), mask, tree, *rest)


def _masked_norm(tree: PyTree, mask: PyTree) -> jax.Array:
  """Global L2 norm over the masked leaves."""
  squares = [jnp.sum(jnp.square(_f32(x)))
             for m, x in zip(jax.tree_util.tree_leaves(mask), jax.tree_util.tree_leaves(tree)) if m]
  return jnp.sqrt(sum(squares)) if squares else jnp.zeros((), jnp.float32)


def apply_delta(params: PyTree, delta: PyTree, mask: PyTree) -> PyTree:
  """params + delta on masked leaves (added in float32, cast back); unmasked leaves as they are."""
  return jax.tree_util.tree_map(
      lambda m, w, d: (_f32(w) + d).astype(w.dtype) if m else w, mask, params, delta)


def gaussian_like(rng: jax.Array, tree: PyTree) -> PyTree:
  """A standard normal array for every leaf, each from its own key."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(rng, len(leaves))
  noise = [jax.random.normal(k, x.shape, jnp.float32) for k, x in zip(keys, leaves)]
  return jax.tree_util.tree_unflatten(treedef, noise)


def _gradient_direction(params: PyTree, grads: PyTree, rng: jax.Array) -> PyTree:
  del params, rng
  return jax.tree_util.tree_map(_f32, grads)


def _gaussian_direction(params: PyTree, grads: PyTree, rng: jax.Array) -> PyTree:
  del grads
  return gaussian_like(rng, params)


def relative(mask: PyTree, eps: float = RELATIVE_EPS,
             direction=_gradient_direction) -> Perturbation:
  """Layer-relative kind (awp; rwp with a Gaussian `direction`): per-leaf ball γ‖w_l‖, box γ|w|."""

  def step_leaf(w, d, size):
    d_norm = _norm(d)
    r = size * _f32(d) / (d_norm + eps) * (_norm(w) + eps)
    return jnp.where(_usable(d_norm), r, 0.0)

  def project_leaf(w, delta, radius):
    # The ball has radius γ(‖w‖ + eps), which a single step never leaves; the box then makes
    # |δ| ≤ γ|w| element-wise and so ‖δ‖ ≤ γ‖w‖.
    ball = _shrink_to_ball(delta, _norm(delta), radius * (_norm(w) + eps))
    box = radius * jnp.abs(_f32(w))
    return jnp.clip(ball, -box, box)

  return Perturbation(
      direction=direction,
      step=lambda params, d, size: _masked(lambda w, g: step_leaf(w, g, size), mask, params, d),
      project=lambda params, delta, radius: _masked(
          lambda w, x: project_leaf(w, x, radius), mask, params, delta))


def global_sam(mask: PyTree, eps: float = GLOBAL_EPS) -> Perturbation:
  """SAM: δ = size·g/‖g‖ with one global norm over the masked leaves; feasible set ‖δ‖ ≤ ρ."""

  def step(params, d, size):
    norm = _masked_norm(d, mask)
    scale = jnp.where(_usable(norm), size / (norm + eps), 0.0)
    return _masked(lambda w, g: jnp.where(_usable(norm), scale * _f32(g), 0.0), mask, params, d)

  def project(params, delta, radius):
    norm = _masked_norm(delta, mask)
    return _masked(lambda w, x: _shrink_to_ball(x, norm, radius), mask, params, delta)

  return Perturbation(direction=_gradient_direction, step=step, project=project)


def adaptive_sam(mask: PyTree, eta: float = ASAM_ETA, eps: float = GLOBAL_EPS) -> Perturbation:
  """ASAM: T = |w| + η element-wise, δ = size·T²g/‖Tg‖; feasible set ‖δ/T‖ ≤ ρ (radially)."""

  def scaling(w):
    return jnp.abs(_f32(w)) + eta

  def step(params, d, size):
    scaled = _masked(lambda w, g: scaling(w) * _f32(g), mask, params, d)
    norm = _masked_norm(scaled, mask)
    scale = jnp.where(_usable(norm), size / (norm + eps), 0.0)
    return _masked(lambda w, tg: jnp.where(_usable(norm), scale * scaling(w) * tg, 0.0),
                   mask, params, scaled)

  def project(params, delta, radius):
    norm = _masked_norm(_masked(lambda w, x: x / scaling(w), mask, params, delta), mask)
    return _masked(lambda w, x: _shrink_to_ball(x, norm, radius), mask, params, delta)

  return Perturbation(direction=_gradient_direction, step=step, project=project)


def make_perturbation(kind: str, mask: PyTree) -> Perturbation:
  """The Perturbation of `kind` (one of KINDS) restricted to the masked leaves."""
  if kind == "awp":
    return relative(mask)
  if kind == "rwp":
    return relative(mask, direction=_gaussian_direction)
  if kind == "sam":
    return global_sam(mask)
  if kind == "asam":
    return adaptive_sam(mask)
  raise ValueError(f"perturbation kind {kind!r} not in {KINDS}")


def ascent(perturbation: Perturbation, params: PyTree, direction: PyTree, grad_fn: AscentGradFn,
           radius, steps: int, mask: PyTree) -> PyTree:
  """The delta after `steps` steps of radius/steps, each projected back onto the feasible set.

  The first step follows `direction`; step i ≥ 1 follows grad_fn(params + delta, i), the gradient at
  the current perturbed point. With one step this is the reference's single ascent step.
  """
  size = radius / steps
  delta = perturbation.project(params, perturbation.step(params, direction, size), radius)
  for i in range(1, steps):
    grads = grad_fn(apply_delta(params, delta, mask), i)
    moved = jax.tree_util.tree_map(jnp.add, delta, perturbation.step(params, grads, size))
    delta = perturbation.project(params, moved, radius)
  return delta


def awp(params: PyTree, grads: PyTree, gamma, mask: PyTree) -> PyTree:
  """The AWP-perturbed params: one projected relative step of γ along each masked leaf's grads."""
  return apply_delta(params, ascent(relative(mask), params, grads, None, gamma, 1, mask), mask)


def _where(pred, on_true: PyTree, on_false: PyTree) -> PyTree:
  """A Python bool picks one tree; a traced boolean selects leaf by leaf."""
  if isinstance(pred, bool):
    return on_true if pred else on_false
  return jax.tree_util.tree_map(lambda a, b: jax.lax.select(pred, a, b), on_true, on_false)


def _loss(value, has_aux: bool) -> jax.Array:
  """The loss of a value_and_grad value ((loss, aux) with has_aux)."""
  return value[0] if has_aux else value


def _pass_keys(rng: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(clean pass's key, perturbed pass's key, direction noise key) of one step's `rng`."""
  clean_rng, perturbed_rng, noise_rng = jax.random.split(rng, 3)
  return clean_rng, perturbed_rng, noise_rng


def value_and_grad_at(loss_fn: Callable, params: PyTree, delta: PyTree, *args, rng: jax.Array,
                      mask: PyTree | None = None, has_aux: bool = False, precision: str = "cast",
                      float32_loss_fn: Callable | None = None) -> tuple[Any, PyTree]:
  """(value, grads) of `loss_fn(params + delta, *args, rng)`, differentiated at the moved point.

  The gradient is taken with respect to the perturbed weights themselves (δ is a constant), as
  the reference's second pass does; `mask` (default `weight_mask`) says which leaves δ moves.
  `precision` ('cast' | 'split' | 'float32', perturb_precision) is how the pass's arithmetic
  carries δ; 'float32' runs `float32_loss_fn` (default `loss_fn`) at the highest matmul precision.
  """
  perturb_precision.check_precision(precision)
  mask = weight_mask(params) if mask is None else mask
  if precision == "split":
    return perturb_precision.split_value_and_grad(loss_fn, params, delta, mask, *args, rng,
                                                  has_aux=has_aux)
  perturbed = jax.lax.stop_gradient(apply_delta(params, delta, mask))
  if precision == "float32":
    with perturb_precision.matmul_precision("highest"):
      return jax.value_and_grad(float32_loss_fn or loss_fn, has_aux=has_aux)(perturbed, *args, rng)
  return jax.value_and_grad(loss_fn, has_aux=has_aux)(perturbed, *args, rng)


def _check_float32_pass(precision: str, compute_dtype, float32_loss_fn) -> None:
  """Raises ValueError when a 'float32' perturbed pass would still compute in a lower dtype."""
  perturb_precision.check_precision(precision)
  if (precision == "float32" and float32_loss_fn is None
      and jnp.dtype(compute_dtype) != jnp.float32):
    raise ValueError(f"perturb precision 'float32' with compute dtype {jnp.dtype(compute_dtype)} "
                     "needs float32_loss_fn (the same loss with the model in float32)")


def value_and_grad(loss_fn: Callable, kind: str, *, radius, mask: PyTree | None = None,
                   steps: int = 1, combine: float = 0.0, has_aux: bool = False,
                   reuse_dropout_rng: bool = False, pair_dropout_rng: bool = False,
                   precision: str = "cast", compute_dtype=jnp.float32,
                   float32_loss_fn: Callable | None = None) -> Callable:
  """`fn(params, *args, rng) -> (value, grads, info)`: jax.value_and_grad with the perturbation.

  `loss_fn(params, *args, rng)` returns the loss (with `has_aux`, `(loss, aux)`); `rng` is split
  into the clean pass's key, the perturbed pass's key (the clean one with `reuse_dropout_rng`) and
  the direction's noise key (rwp). The clean pass's key is the one kind 'none' uses for its only
  pass; `pair_dropout_rng` swaps the two passes' keys, so the pass whose gradient updates the
  weights draws the plain step's dropout masks (a perturbed run and its unperturbed pair then
  differ by the perturbation, not by their masks) while the two passes still draw different
  masks, as the reference's do. `value` is the clean pass's; `grads` is the gradient at the
  perturbed point (mixed with the clean one by `combine`); for kind 'none' or radius 0 it is the
  plain step's: the clean pass's, or under pairing the unmixed pass at δ = 0. `info`:
  perturbed_loss, perturbation_norm, realised_cosine and realised_norm_ratio (the perturbation the
  perturbed pass multiplies by against δ, in `compute_dtype`, the model's), and the delta, the
  clean gradient and (with `has_aux`) the perturbed pass's aux. `radius` may be traced (vmap over
  radii of one kind). `precision` ('cast' | 'split' | 'float32') is how the
  perturbed pass carries δ (perturb_precision); 'float32' with a lower `compute_dtype` needs
  `float32_loss_fn`, the same loss with the model in float32.
  """
  _check_float32_pass(precision, compute_dtype, float32_loss_fn)
  if reuse_dropout_rng and pair_dropout_rng:
    raise ValueError("reuse_dropout_rng and pair_dropout_rng exclude each other (reuse already "
                     "gives every pass the plain step's key)")
  if kind != NONE and kind not in KINDS:
    raise ValueError(f"perturbation kind {kind!r} not in {(NONE,) + KINDS}")
  if kind == "rwp" and steps > 1:
    raise ValueError("perturbation steps > 1 needs a gradient direction; rwp has none")
  clean_value_and_grad = jax.value_and_grad(loss_fn, has_aux=has_aux)

  def fn(params: PyTree, *args, rng: jax.Array):
    clean_rng, perturbed_rng, noise_rng = _pass_keys(rng)
    if pair_dropout_rng and kind != NONE:
      clean_rng, perturbed_rng = perturbed_rng, clean_rng
    value, clean_grads = clean_value_and_grad(params, *args, clean_rng)
    if kind == NONE:
      return value, clean_grads, {"clean_grads": clean_grads}
    leaf_mask = weight_mask(params) if mask is None else mask
    perturbation = make_perturbation(kind, leaf_mask)
    pass_rng = clean_rng if reuse_dropout_rng else perturbed_rng
    # Intermediate ascent points (steps > 1) get their own keys unless keys are reused.
    ascent_rng = lambda i: pass_rng if reuse_dropout_rng else jax.random.fold_in(pass_rng, i)
    ascent_grad = lambda p, i: clean_value_and_grad(p, *args, ascent_rng(i))[1]
    direction = perturbation.direction(params, clean_grads, noise_rng)
    delta = ascent(perturbation, params, direction, ascent_grad, radius, steps, leaf_mask)
    perturbed_value, grads = value_and_grad_at(loss_fn, params, delta, *args, rng=pass_rng,
                                               mask=leaf_mask, has_aux=has_aux,
                                               precision=precision,
                                               float32_loss_fn=float32_loss_fn)
    # At radius 0 the update is the plain step's gradient: the clean pass's, or under pairing
    # the pass at δ = 0 (it draws the plain step's key), unmixed by `combine`.
    plain_grads = grads if pair_dropout_rng else clean_grads
    if combine:
      grads = jax.tree_util.tree_map(lambda p, c: (1 - combine) * p + combine * c, grads,
                                     clean_grads)
    grads = _where(radius == 0, plain_grads, grads)
    info = {"perturbed_loss": _loss(perturbed_value, has_aux),
            "perturbation_norm": optax.tree.norm(delta),
            **perturb_precision.realised_metrics(params, delta, leaf_mask, compute_dtype,
                                                 precision),
            "delta": delta, "clean_grads": clean_grads}
    if has_aux:
      info["perturbed_aux"] = perturbed_value[1]
    return value, grads, info

  return fn


class ReuseState(NamedTuple):
  """What `every_k` carries between calls: calls made so far and the last perturbation (float32)."""

  count: jax.Array
  delta: PyTree


def init_reuse_state(params: PyTree) -> ReuseState:
  """`every_k`'s state before its first call: count 0 and a zero (float32) perturbation."""
  zeros = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, jnp.float32), params)
  return ReuseState(count=jnp.zeros((), jnp.int32), delta=zeros)


class EveryK(NamedTuple):
  """`value_and_grad` recomputing its perturbation every k calls, as optax's (init, apply) pair."""

  init: Callable[[PyTree], ReuseState]
  apply: Callable[..., tuple[Any, PyTree, dict, ReuseState]]


def every_k(loss_fn: Callable, kind: str, *, radius, k: int, mask: PyTree | None = None,
            steps: int = 1, has_aux: bool = False, reuse_dropout_rng: bool = False,
            pair_dropout_rng: bool = False, precision: str = "cast", compute_dtype=jnp.float32,
            float32_loss_fn: Callable | None = None) -> EveryK:
  """`value_and_grad` whose perturbation is recomputed on every k-th call and reused in between.

  `init(params) -> ReuseState`; `apply(params, reuse_state, *args, rng, recompute=None) ->
  (value, grads, info, reuse_state)`. A call with `count % k == 0` (or `recompute` True, which a
  caller may pass unbatched, e.g. outside a vmap over radii, so both branches do not run) is
  `value_and_grad(...)`'s clean pass, fresh perturbation and perturbed pass. The other calls
  project the last perturbation onto the current weights' feasible set and run their only pass
  there with the clean pass's key: `value` is that pass's and `info['recomputed']` is 0; no clean
  gradient exists there, and `info['clean_grads']` holds zeros (a placeholder: read it only where
  `recomputed` is 1, as train_step.logged_metrics does).
  """
  if k < 1:
    raise ValueError(f"every_k needs k >= 1, got {k}")
  precision_options = dict(precision=precision, float32_loss_fn=float32_loss_fn)
  fresh_value_and_grad = value_and_grad(loss_fn, kind, radius=radius, mask=mask, steps=steps,
                                        has_aux=has_aux, reuse_dropout_rng=reuse_dropout_rng,
                                        pair_dropout_rng=pair_dropout_rng,
                                        compute_dtype=compute_dtype, **precision_options)

  def apply(params: PyTree, reuse_state: ReuseState, *args, rng: jax.Array, recompute=None):
    leaf_mask = weight_mask(params) if mask is None else mask

    def fresh():
      value, grads, info = fresh_value_and_grad(params, *args, rng=rng)
      return value, grads, info["clean_grads"], info["delta"], info["perturbed_loss"]

    def reuse():
      delta = make_perturbation(kind, leaf_mask).project(params, reuse_state.delta, radius)
      value, grads = value_and_grad_at(loss_fn, params, delta, *args, rng=_pass_keys(rng)[0],
                                       mask=leaf_mask, has_aux=has_aux, **precision_options)
      return (value, grads, jax.tree_util.tree_map(jnp.zeros_like, grads), delta,
              _loss(value, has_aux))

    if recompute is None:
      recompute = True if k == 1 else reuse_state.count % k == 0
    if recompute is True:
      value, grads, clean_grads, delta, perturbed_loss = fresh()
    else:
      value, grads, clean_grads, delta, perturbed_loss = jax.lax.cond(recompute, fresh, reuse)
    info = {"perturbed_loss": perturbed_loss, "perturbation_norm": optax.tree.norm(delta),
            **perturb_precision.realised_metrics(params, delta, leaf_mask, compute_dtype,
                                                 precision),
            "delta": delta, "clean_grads": clean_grads,
            "recomputed": jnp.asarray(recompute, jnp.float32)}
    return value, grads, info, ReuseState(count=reuse_state.count + 1, delta=delta)

  return EveryK(init_reuse_state, apply)
