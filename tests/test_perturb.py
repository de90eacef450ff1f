"""AWP/RWP against paper §1.2 and the worked example of §10 item 11."""

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax import perturb


def toy(kernel, grad_kernel):
  params = {"dense": {"kernel": jnp.array(kernel, jnp.float32), "bias": jnp.ones(4)},
            "norm": {"scale": jnp.full(4, 1.0), "bias": jnp.zeros(4)},
            "attn": {"relative_position_bias_table": jnp.ones((5, 2))}}
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  grads["dense"]["kernel"] = jnp.array(grad_kernel, jnp.float32)
  return params, grads


def test_mask_selects_reference_weight_set():
  params, _ = toy([1, 2, 0, -3], [1, 0, 1, 1])
  mask = perturb.weight_mask(params)
  assert mask == {"dense": {"kernel": True, "bias": False}, "norm": {"scale": True, "bias": False},
                  "attn": {"relative_position_bias_table": False}}


def test_awp_worked_example():
  params, grads = toy([1, 2, 0, -3], [1, 0, 1, 1])
  out = perturb.awp(params, grads, 0.1, perturb.weight_mask(params))
  np.testing.assert_allclose(out["dense"]["kernel"], [1.1, 2.0, 0.0, -2.783975], atol=1e-6)
  delta = out["dense"]["kernel"] - params["dense"]["kernel"]
  np.testing.assert_allclose(jnp.linalg.norm(delta), 0.238048, atol=1e-6)
  # Unmasked leaves are untouched even though their gradients are non-zero.
  np.testing.assert_array_equal(out["dense"]["bias"], params["dense"]["bias"])
  np.testing.assert_array_equal(out["attn"]["relative_position_bias_table"],
                                params["attn"]["relative_position_bias_table"])
  # LayerNorm gains of 1 move by exactly ±gamma (the box binds: all-ones gradient).
  np.testing.assert_allclose(out["norm"]["scale"], 1.1, atol=1e-6)


def test_zero_or_nan_gradient_leaves_weight_unchanged():
  for bad in ([0, 0, 0, 0], [np.nan, 1, 1, 1]):
    params, grads = toy([1, 2, 0, -3], bad)
    out = perturb.awp(params, grads, 0.1, perturb.weight_mask(params))
    np.testing.assert_array_equal(out["dense"]["kernel"], params["dense"]["kernel"])


def test_gamma_zero_is_identity():
  params, grads = toy([1, 2, 0, -3], [1, 0, 1, 1])
  out = perturb.awp(params, grads, 0.0, perturb.weight_mask(params))
  for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(params)):
    np.testing.assert_array_equal(a, b)


def test_rwp_respects_ball_and_box():
  params, _ = toy([1, 2, 0.5, -3], [1, 0, 1, 1])
  gamma = 0.05
  out = perturb.rwp(params, jax.random.key(0), gamma, perturb.weight_mask(params))
  w, w2 = params["dense"]["kernel"], out["dense"]["kernel"]
  assert np.all(np.abs(w2 - w) <= gamma * np.abs(w) + 1e-7)
  assert float(jnp.linalg.norm(w2 - w)) <= gamma * float(jnp.linalg.norm(w)) + 1e-7
  assert not np.array_equal(w2, w)
  # A different key gives a different direction.
  out2 = perturb.rwp(params, jax.random.key(1), gamma, perturb.weight_mask(params))
  assert not np.array_equal(out2["dense"]["kernel"], w2)
