"""Directions in weight space for loss landscapes: Gaussian, filter-normalised (Li et al. 2018).

A direction is a float32 pytree shaped like the params. Filter normalisation rescales each filter of
a random direction to the norm of the matching filter of the weights. A "filter" is one output unit:
Flax Dense and Conv kernels keep the output axis LAST, so a filter of a kernel shaped (..., in, out)
is the slice [..., j] (all axes but the last). Leaves that are not >= 2-D weights (biases, LayerNorm
scales and biases, the relative/fragment position-bias tables) are zeroed by default, as the
loss-landscape code does ("ignore biasbn"); with `include_biases_and_norms` they are normalised too,
a 1-D leaf as one filter and a 2-D table per last-axis slice like a kernel.
"""

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from vqa_jax import perturb

PyTree = Any
FILTER_EPS = 1e-10


def filter_norms(x: jax.Array) -> jax.Array:
  """Per-filter L2 norms: over all axes but the last (shape (out,)); a 1-D array is one filter."""
  x = x.astype(jnp.float32)
  if x.ndim <= 1:
    return jnp.linalg.norm(x.reshape(-1))
  return jnp.sqrt(jnp.sum(jnp.square(x), axis=tuple(range(x.ndim - 1))))


def filter_mask(params: PyTree, include_biases_and_norms: bool = False) -> PyTree:
  """True on the leaves a filter-normalised direction moves: >= 2-D weights, or every leaf."""
  if include_biases_and_norms:
    return perturb.full_mask(params)
  return jax.tree_util.tree_map(lambda m, w: bool(m) and w.ndim >= 2,
                                perturb.weight_mask(params), params)


def _normalize_leaf(d: jax.Array, w: jax.Array) -> jax.Array:
  """d with each filter rescaled to the norm of w's matching filter (zero where w's filter is 0)."""
  return d * (filter_norms(w) / (filter_norms(d) + FILTER_EPS))


def filter_normalize(direction: PyTree, params: PyTree,
                     include_biases_and_norms: bool = False) -> PyTree:
  """The direction with every filter at its weight filter's norm; unselected leaves zero."""
  mask = filter_mask(params, include_biases_and_norms)
  return jax.tree_util.tree_map(
      lambda m, d, w: _normalize_leaf(d.astype(jnp.float32), w) if m
      else jnp.zeros(w.shape, jnp.float32), mask, direction, params)


def random_direction(rng: jax.Array, params: PyTree,
                     include_biases_and_norms: bool = False) -> PyTree:
  """A standard Gaussian direction, filter-normalised to `params`."""
  return filter_normalize(perturb.gaussian_like(rng, params), params, include_biases_and_norms)


def random_directions(rng: jax.Array, params: PyTree, count: int,
                      include_biases_and_norms: bool = False) -> PyTree:
  """`count` independent filter-normalised directions stacked on a leading axis."""
  return jax.vmap(lambda key: random_direction(key, params, include_biases_and_norms))(
      jax.random.split(rng, count))


def difference(params_b: PyTree, params_a: PyTree) -> PyTree:
  """params_b − params_a in float32: the direction of the line from a to b."""
  return jax.tree_util.tree_map(lambda b, a: b.astype(jnp.float32) - a.astype(jnp.float32),
                                params_b, params_a)


def stack(directions: Sequence[PyTree]) -> PyTree:
  """Directions of one structure stacked on a leading axis (the layout `surface` takes)."""
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *directions)


def combine(params: PyTree, stacked: PyTree, coeffs: jax.Array) -> PyTree:
  """params + Σ_i coeffs[i]·stacked[i] (added in float32, cast back to each leaf's dtype)."""
  coeffs = jnp.asarray(coeffs, jnp.float32)
  return jax.tree_util.tree_map(
      lambda w, d: (w.astype(jnp.float32) + jnp.tensordot(coeffs, d, axes=1)).astype(w.dtype),
      params, stacked)
