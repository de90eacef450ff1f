"""Weight perturbations applied before the outer optimizer update: AWP and RWP (paper §1.2).

Pure functions on parameter pytrees. `awp` reproduces the reference `WP._attack_step`: a per-tensor
(Frobenius) step of relative length γ·‖w‖ along the gradient, then an element-wise box
[w − γ|w|, w + γ|w|]. `rwp` is the same step along a standard Gaussian direction.
"""

from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any

# Flax leaf names that correspond to PyTorch parameters whose name contains "weight".
WEIGHT_LEAF_NAMES = frozenset({"kernel", "scale", "embedding"})


def _leaf_name(path) -> str:
  """The last key of a pytree path as a string."""
  last = path[-1]
  for attr in ("key", "name", "idx"):
    if hasattr(last, attr):
      return str(getattr(last, attr))
  return str(last)


def weight_mask(params: PyTree) -> PyTree:
  """True on Dense/Conv kernels, LayerNorm scales and embeddings; False on biases and bias tables."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: _leaf_name(path) in WEIGHT_LEAF_NAMES, params)


def _relative_step(w: jax.Array, d: jax.Array, gamma, eps: float) -> jax.Array:
  """w moved by γ·(‖w‖+eps)·d/(‖d‖+eps), boxed to [w−γ|w|, w+γ|w|]; w itself if ‖d‖ is 0 or not finite."""
  w32 = w.astype(jnp.float32)
  d32 = d.astype(jnp.float32)
  d_norm = jnp.linalg.norm(d32.reshape(-1))
  w_norm = jnp.linalg.norm(w32.reshape(-1))
  r = gamma * d32 / (d_norm + eps) * (w_norm + eps)
  radius = gamma * jnp.abs(w32)
  moved = jnp.clip(w32 + r, w32 - radius, w32 + radius)
  ok = jnp.logical_and(d_norm > 0, jnp.isfinite(d_norm))
  return jnp.where(ok, moved, w32).astype(w.dtype)


def perturb_along(params: PyTree, directions: PyTree, gamma, mask: PyTree,
                  eps: float = 1e-6) -> PyTree:
  """Applies the layer-relative boxed step along `directions` to the masked leaves only."""
  return jax.tree_util.tree_map(
      lambda w, d, m: _relative_step(w, d, gamma, eps) if m else w, params, directions, mask)


def awp(params: PyTree, grads: PyTree, gamma, mask: PyTree, eps: float = 1e-6) -> PyTree:
  """Adversarial weight perturbation: the relative step along each masked leaf's gradient."""
  return perturb_along(params, grads, gamma, mask, eps)


def gaussian_like(rng: jax.Array, tree: PyTree) -> PyTree:
  """A standard normal array for every leaf, each from its own key."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(rng, len(leaves))
  noise = [jax.random.normal(k, x.shape, jnp.float32) for k, x in zip(keys, leaves)]
  return jax.tree_util.tree_unflatten(treedef, noise)


def rwp(params: PyTree, rng: jax.Array, gamma, mask: PyTree, eps: float = 1e-6) -> PyTree:
  """Random weight perturbation: the relative step along a Gaussian direction per leaf."""
  return perturb_along(params, gaussian_like(rng, params), gamma, mask, eps)


def tree_norm(tree: PyTree) -> jax.Array:
  """Global L2 norm over all leaves of a pytree."""
  leaves = jax.tree_util.tree_leaves(tree)
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))
