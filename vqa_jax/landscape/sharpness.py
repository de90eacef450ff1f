"""Sharpness measures of a loss at given weights (pure functions; jit them with the loss bound).

`loss_fn(params, *data) -> scalar` throughout (for the fixed sets: SurfaceEvaluator.loss_fn).
  loss_increase      L(w + α·d) − L(w), here from a landscape's values (see analysis.py).
  worst_case_in_ball max L(w + δ) over the AWP set (‖δ_l‖ ≤ γ‖w_l‖ per layer and |δ| ≤ γ|w|),
                     found by `perturb.ascent`: projected multi-step ascent from the gradient.
  top_eigenvalue     the Hessian eigenvalue of largest magnitude, by power iteration on
                     Hessian-vector products (reverse-over-reverse: the gradient of ⟨∇L, v⟩,
                     which, unlike jax.jvp, goes through the models' custom_vjp layers).
  hutchinson_trace   tr(H) ≈ mean over Rademacher probes v of vᵀHv, with its standard error.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from vqa_jax import perturb

PyTree = Any
LossFn = Callable[..., jax.Array]


def hvp(loss_fn: LossFn, params: PyTree, vector: PyTree, *data) -> PyTree:
  """The Hessian-vector product H(params)·vector of loss_fn(·, *data).

  Reverse over reverse, ∇_w ⟨∇L(w), v⟩: forward mode (jax.jvp of jax.grad) cannot differentiate
  a jax.custom_vjp function, and the Video Swin's gate_mix is one.
  """
  directional = lambda p: optax.tree.vdot(jax.grad(loss_fn)(p, *data), vector)
  return jax.grad(directional)(params)


def _f32_tree(tree: PyTree) -> PyTree:
  return jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), tree)


def _masked(tree: PyTree, mask: PyTree | None) -> PyTree:
  """tree with the leaves outside `mask` zeroed (all kept when mask is None)."""
  if mask is None:
    return tree
  return jax.tree_util.tree_map(lambda m, x: x if m else jnp.zeros_like(x), mask, tree)


def _unit(tree: PyTree) -> PyTree:
  return optax.tree.scale(1.0 / (optax.tree.norm(tree) + 1e-30), tree)


def top_eigenvalue(loss_fn: LossFn, params: PyTree, rng: jax.Array, *data, iters: int = 20,
                   mask: PyTree | None = None) -> tuple[jax.Array, PyTree]:
  """(λ, v): the Hessian eigenvalue of largest |λ| (Rayleigh quotient after `iters` power steps).

  With a `mask` the Hessian is restricted to the masked leaves (the others held fixed).
  """
  params = _f32_tree(params)
  start = _unit(_masked(perturb.gaussian_like(rng, params), mask))

  def power_step(_, v):
    return _unit(_masked(hvp(loss_fn, params, v, *data), mask))

  v = jax.lax.fori_loop(0, iters, power_step, start)
  eigenvalue = optax.tree.vdot(v, _masked(hvp(loss_fn, params, v, *data), mask))
  return eigenvalue, v


def rademacher_like(rng: jax.Array, tree: PyTree) -> PyTree:
  """A ±1 array (float32) for every leaf, each from its own key."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(rng, len(leaves))
  return jax.tree_util.tree_unflatten(
      treedef, [jax.random.rademacher(k, x.shape, jnp.float32) for k, x in zip(keys, leaves)])


def hutchinson_trace(loss_fn: LossFn, params: PyTree, rng: jax.Array, *data, probes: int = 16,
                     mask: PyTree | None = None) -> tuple[jax.Array, jax.Array]:
  """(estimate, standard error) of tr(H) from `probes` Rademacher probes (one HVP each)."""
  params = _f32_tree(params)

  def quadratic_form(key):
    v = _masked(rademacher_like(key, params), mask)
    return optax.tree.vdot(v, hvp(loss_fn, params, v, *data))

  samples = jax.lax.map(quadratic_form, jax.random.split(rng, probes))
  return samples.mean(), samples.std(ddof=1) / jnp.sqrt(probes)


def worst_case_in_ball(loss_fn: LossFn, params: PyTree, *data, gamma: float, steps: int,
                       mask: PyTree | None = None) -> tuple[jax.Array, PyTree]:
  """(max loss found, δ) over the AWP set of radius γ by `steps` projected ascent steps.

  The first step follows the gradient at w (the reference AWP step when steps = 1); every later step
  follows the gradient at the current point, and each is projected back onto the ball and box.
  `mask` defaults to perturb.weight_mask (the leaves AWP perturbs).
  """
  mask = perturb.weight_mask(params) if mask is None else mask
  grad = jax.grad(loss_fn)
  perturbation = perturb.make_perturbation("awp", mask)
  delta = perturb.ascent(perturbation, params, grad(params, *data),
                         lambda p, _: grad(p, *data), gamma, steps, mask)
  return loss_fn(perturb.apply_delta(params, delta, mask), *data), delta
