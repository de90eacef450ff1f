"""The perturbation kinds against paper §1.2, the worked example of §10 item 11 and hand computations."""

import ast
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import assert_trees_close
from tests.helpers import np_awp_delta
from tests.helpers import zip_leaves
from vqa_jax import perturb
from vqa_jax import perturb_precision
from vqa_jax.config import choices


def perturbed(kind, params, grads, radius, mask=None, rng=None):
  """`params` moved by one projected step of `kind` (all leaves unless `mask`), via the public API."""
  mask = perturb.full_mask(params) if mask is None else mask
  kind_fns = perturb.make_perturbation(kind, mask)
  direction = kind_fns.direction(params, grads, rng)
  return perturb.apply_delta(
      params, perturb.ascent(kind_fns, params, direction, None, radius, 1, mask), mask)


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
  chex.assert_trees_all_equal(out, params)


def test_rwp_respects_ball_and_box():
  params, _ = toy([1, 2, 0.5, -3], [1, 0, 1, 1])
  gamma = 0.05
  out = perturbed("rwp", params, None, gamma, perturb.weight_mask(params), jax.random.key(0))
  w, w2 = params["dense"]["kernel"], out["dense"]["kernel"]
  assert np.all(np.abs(w2 - w) <= gamma * np.abs(w) + 1e-7)
  assert float(jnp.linalg.norm(w2 - w)) <= gamma * float(jnp.linalg.norm(w)) + 1e-7
  assert not np.array_equal(w2, w)
  # A different key gives a different direction.
  out2 = perturbed("rwp", params, None, gamma, perturb.weight_mask(params), jax.random.key(1))
  assert not np.array_equal(out2["dense"]["kernel"], w2)


def random_tree(seed, grad_kind="normal"):
  """Kernels (one with a zero column), scales, biases and a bias table; gradients of `grad_kind`."""
  rng = np.random.default_rng(seed)
  params = {"a": {"kernel": rng.normal(size=(3, 4)), "bias": rng.normal(size=4)},
            "b": {"kernel": rng.normal(size=(4, 2)) * np.array([1.0, 0.0]),
                  "scale": np.ones(2) + 0.1},
            "t": {"relative_position_bias_table": rng.normal(size=(5, 2))}}
  grads = jax.tree_util.tree_map(lambda x: rng.normal(size=x.shape), params)
  if grad_kind == "zero":
    grads["a"]["kernel"] = np.zeros((3, 4))
  elif grad_kind == "nan":
    grads["a"]["kernel"][0, 0] = np.nan
  elif grad_kind == "inf":
    grads["b"]["kernel"][1, 0] = np.inf
  as_f32 = lambda t: jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), t)
  return as_f32(params), as_f32(grads)


def relative_perturbations(params, grads, gamma, mask):
  """The layer-relative perturbations under test: awp, rwp and 3-step ascent on a fixed gradient."""
  pert = perturb.make_perturbation("awp", mask)
  multi = perturb.apply_delta(params, perturb.ascent(pert, params, grads, lambda p, i: grads, gamma,
                                                     3, mask), mask)
  return {"awp": perturb.awp(params, grads, gamma, mask),
          "rwp": perturbed("rwp", params, None, gamma, mask, jax.random.key(0)), "multi": multi}


@pytest.mark.parametrize("grad_kind", ["normal", "zero", "nan", "inf"])
@pytest.mark.parametrize("gamma", [0.0, 1e-3, 0.3])
def test_relative_invariants(grad_kind, gamma):
  params, grads = random_tree(1, grad_kind)
  mask = perturb.weight_mask(params)
  for name, out in relative_perturbations(params, grads, gamma, mask).items():
    for m, w, w2, g in zip_leaves(mask, params, out, grads):
      w, w2 = np.asarray(w), np.asarray(w2)
      assert np.all(np.isfinite(w2)), name
      if not m:
        np.testing.assert_array_equal(w2, w, err_msg=name)  # unmasked leaves untouched
        continue
      r = w2 - w
      assert np.all(np.abs(r) <= gamma * np.abs(w) * (1 + 1e-6) + 1e-7), name  # the box
      assert np.linalg.norm(r) <= gamma * np.linalg.norm(w) * (1 + 1e-6) + 1e-7, name  # the ball
      if name != "rwp" and (not np.isfinite(np.linalg.norm(g)) or not np.any(g)):
        np.testing.assert_array_equal(w2, w, err_msg=name)  # zero / non-finite direction


@pytest.mark.parametrize("kind", ["sam", "asam"])
@pytest.mark.parametrize("grad_kind", ["zero", "nan", "inf"])
def test_global_kinds_leave_params_on_unusable_gradients(kind, grad_kind):
  params, grads = random_tree(2, grad_kind)
  if grad_kind == "zero":
    grads = jax.tree_util.tree_map(jnp.zeros_like, grads)
  out = perturbed(kind, params, grads, 0.1)
  chex.assert_trees_all_equal(out, params)


def test_sam_is_absolute_radius_on_global_norm():
  params, grads = random_tree(3)
  out = perturbed("sam", params, grads, 0.1)
  gnorm = np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree_util.tree_leaves(grads)))
  for w, w2, g in zip_leaves(params, out, grads):
    np.testing.assert_allclose(w2 - w, 0.1 * g / gnorm, rtol=1e-5, atol=1e-7)
  delta = jax.tree_util.tree_map(jnp.subtract, out, params)
  np.testing.assert_allclose(optax.tree.norm(delta), 0.1, rtol=1e-5)
  # With a mask, only masked leaves move and the norm is over them.
  mask = perturb.weight_mask(params)
  masked = perturbed("sam", params, grads, 0.1, mask)
  np.testing.assert_array_equal(masked["a"]["bias"], params["a"]["bias"])
  moved = [np.asarray(b - a) for m, a, b in zip_leaves(mask, params, masked) if m]
  np.testing.assert_allclose(np.sqrt(sum(np.sum(x * x) for x in moved)), 0.1, rtol=1e-5)


def test_asam_elementwise_scaling_hand_computed():
  params = {"kernel": jnp.array([1.0, -2.0, 0.0]), "bias": jnp.array([0.5])}
  grads = {"kernel": jnp.array([1.0, 1.0, 2.0]), "bias": jnp.array([1.0])}
  out = perturbed("asam", params, grads, 0.2)  # η = perturb.ASAM_ETA = 0.01
  t = {"kernel": np.array([1.01, 2.01, 0.01]), "bias": np.array([0.51])}
  tg_norm = np.sqrt(np.sum((t["kernel"] * [1, 1, 2]) ** 2) + (0.51 * 1.0) ** 2)
  np.testing.assert_allclose(out["kernel"] - params["kernel"],
                             0.2 * t["kernel"] ** 2 * np.array([1, 1, 2]) / tg_norm, rtol=1e-5)
  np.testing.assert_allclose(out["bias"] - params["bias"], 0.2 * 0.51 ** 2 / tg_norm, rtol=1e-5)


def test_single_step_ascent_equals_awp_and_constant_gradient_multistep_too():
  params, grads = random_tree(4)
  mask = perturb.weight_mask(params)
  pert = perturb.make_perturbation("awp", mask)
  by_hand = jax.tree_util.tree_map(  # numpy, per masked leaf (tests/helpers.py)
      lambda m, w, g: np.asarray(w) + np_awp_delta(np.asarray(w, np.float64), np.asarray(g), 0.05)
      if m else np.asarray(w), mask, params, grads)
  for steps in (1, 4):
    delta = perturb.ascent(pert, params, grads, lambda p, i: grads, 0.05, steps, mask)
    out = perturb.apply_delta(params, delta, mask)
    assert_trees_close(out, by_hand, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(out, perturb.awp(params, grads, 0.05, mask), rtol=1e-6,
                                atol=1e-7)


def test_multistep_ascent_hand_computed_two_steps():
  # One leaf w = [3, 4] (norm 5), γ = 0.2: ball ‖δ‖ ≤ 1, box |δ| ≤ [0.6, 0.8]. The gradient is
  # [1, 0], then [0, 1] at the first perturbed point; each step has length γ/2·‖w‖ = 0.5:
  # δ1 = [0.5, 0], δ2 = δ1 + [0, 0.5] = [0.5, 0.5] (inside ball and box).
  params = {"kernel": jnp.array([3.0, 4.0])}
  mask = {"kernel": True}
  pert = perturb.make_perturbation("awp", mask)
  second = {"kernel": jnp.array([0.0, 1.0])}
  delta = perturb.ascent(pert, params, {"kernel": jnp.array([1.0, 0.0])}, lambda p, i: second, 0.2,
                         2, mask)
  np.testing.assert_allclose(delta["kernel"], [0.5, 0.5], rtol=1e-5)
  # Three steps of 1/3 along [1, 0]: the box caps the first coordinate at 0.6 (not 1.0).
  delta = perturb.ascent(pert, params, {"kernel": jnp.array([1.0, 0.0])},
                         lambda p, i: {"kernel": jnp.array([1.0, 0.0])}, 0.2, 3, mask)
  np.testing.assert_allclose(delta["kernel"], [0.6, 0.0], rtol=1e-5)


def test_projection_is_ball_then_box():
  # w = [1, 0.1], γ = 1: ball ‖δ‖ ≤ γ(‖w‖ + eps) ≈ 1.004988, box |δ| ≤ [1, 0.1]. δ = [2, 2]
  # shrinks onto the ball to [0.710633, 0.710633], then the box clips it to [0.710633, 0.1]
  # (the box alone would give [1, 0.1]).
  params = {"kernel": jnp.array([1.0, 0.1])}
  mask = {"kernel": True}
  pert = perturb.make_perturbation("awp", mask)
  delta = pert.project(params, {"kernel": jnp.array([2.0, 2.0])}, 1.0)
  np.testing.assert_allclose(delta["kernel"], [0.710633, 0.1], rtol=1e-5)


def test_multistep_sam_stays_in_ball():
  params = {"kernel": jnp.ones(4)}
  mask = {"kernel": True}
  pert = perturb.make_perturbation("sam", mask)
  e = lambda i: {"kernel": jnp.eye(4)[i % 4]}
  # 5 steps of 0.06 along e1, e2, e3, e4, e1: the plain sum has norm 0.06·√7 = 0.159 ≤ 0.3.
  delta = perturb.ascent(pert, params, e(0), lambda p, i: e(i), 0.3, 5, mask)
  np.testing.assert_allclose(delta["kernel"], [0.12, 0.06, 0.06, 0.06], rtol=1e-5)
  # The same direction every step: a straight line of length exactly ρ.
  delta = perturb.ascent(pert, params, e(0), lambda p, i: e(0), 0.3, 5, mask)
  np.testing.assert_allclose(delta["kernel"], [0.3, 0, 0, 0], rtol=1e-5)
  # The projection shrinks a delta outside the ball onto ‖δ‖ = ρ and leaves one inside as it is.
  outside = {"kernel": jnp.array([3.0, 4, 0, 0])}
  np.testing.assert_allclose(pert.project(params, outside, 1.0)["kernel"], [0.6, 0.8, 0, 0],
                             rtol=1e-6)
  inside = {"kernel": jnp.array([0.3, 0.4, 0, 0])}
  np.testing.assert_array_equal(pert.project(params, inside, 1.0)["kernel"], inside["kernel"])


def imported_modules(module) -> set[str]:
  """The modules a module's source imports (`from vqa_jax import x` as 'vqa_jax.x')."""
  tree = ast.parse(pathlib.Path(module.__file__).read_text())
  imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
              for alias in node.names}
  return imported | {f"{node.module}.{alias.name}" if node.module == "vqa_jax" else node.module
                     for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     for alias in node.names}


def test_perturb_imports_only_jax_optax_and_perturb_precision():
  """perturb.py stands alone: jax, optax, perturb_precision (jax, flax) and the stdlib."""
  assert imported_modules(perturb) == {"typing", "jax", "jax.numpy", "optax",
                                       "vqa_jax.perturb_precision"}
  assert imported_modules(perturb_precision) == {"contextlib", "typing", "flax.linen", "jax",
                                                 "jax.numpy"}


def test_public_api_is_all_and_every_name_exists():
  assert sorted(perturb.__all__) == sorted(set(perturb.__all__))
  missing = [name for name in perturb.__all__ if not hasattr(perturb, name)]
  assert not missing
  public = {name for name, value in vars(perturb).items()
            if not name.startswith("_") and callable(value)
            and getattr(value, "__module__", None) == perturb.__name__}
  assert public <= set(perturb.__all__), public - set(perturb.__all__)


def test_config_choices_name_the_module_kinds_and_precisions():
  assert choices.PERTURBATION_KINDS == (perturb.NONE,) + perturb.KINDS
  assert choices.PERTURB_PRECISIONS == perturb_precision.PRECISIONS
  assert choices.MATMUL_PRECISIONS == perturb_precision.MATMUL_PRECISIONS
  for kind in perturb.KINDS:
    perturb.make_perturbation(kind, {"kernel": True})  # every kind builds
  with pytest.raises(ValueError, match="kind 'none' not in"):
    perturb.make_perturbation(perturb.NONE, {"kernel": True})


def quadratic(params, x, rng):
  """A loss with a dropout-like key: sum of (noise * w . x)^2 over the batch, plus a bias term."""
  noise = 1.0 + 0.1 * jax.random.normal(rng, (x.shape[0],))
  pred = (x @ params["dense"]["kernel"] + params["dense"]["bias"]) * noise
  return jnp.sum(pred ** 2), pred


def awp_inputs():
  """Params, a batch and a key for the value_and_grad tests."""
  rng = np.random.default_rng(7)
  params = {"dense": {"kernel": jnp.array(rng.normal(size=(3,)), jnp.float32),
                      "bias": jnp.array(0.5, jnp.float32)}}
  return params, jnp.array(rng.normal(size=(6, 3)), jnp.float32), jax.random.key(4)


def test_value_and_grad_awp_gradient_is_the_gradient_at_the_hand_computed_point():
  params, x, key = awp_inputs()
  gamma = 0.05
  fn = perturb.value_and_grad(quadratic, "awp", radius=gamma, has_aux=True)
  (loss, pred), grads, info = jax.jit(fn)(params, x, rng=key)
  clean_key, perturbed_key, _ = jax.random.split(key, 3)
  # By hand: the clean gradient g of the kernel; the AWP step r = gamma * g / |g| * |w| (eps 1e-6)
  # on the kernel only (the bias is not a weight), clipped to |r| <= gamma |w| element-wise.
  w = np.asarray(params["dense"]["kernel"], np.float64)
  g = np.asarray(jax.grad(lambda p: quadratic(p, x, clean_key)[0])(params)["dense"]["kernel"])
  r = gamma * g / (np.linalg.norm(g) + 1e-6) * (np.linalg.norm(w) + 1e-6)
  r = np.clip(r, -gamma * np.abs(w), gamma * np.abs(w))
  moved = {"dense": {"kernel": jnp.array(w + r, jnp.float32), "bias": params["dense"]["bias"]}}
  expected_loss, expected_grads = jax.value_and_grad(
      lambda p: quadratic(p, x, perturbed_key)[0])(moved)
  chex.assert_trees_all_close(grads, expected_grads, rtol=1e-5)
  np.testing.assert_allclose(loss, quadratic(params, x, clean_key)[0], rtol=1e-6)
  np.testing.assert_allclose(pred, quadratic(params, x, clean_key)[1], rtol=1e-6)
  np.testing.assert_allclose(info["perturbed_loss"], expected_loss, rtol=1e-5)
  np.testing.assert_allclose(info["perturbation_norm"], np.linalg.norm(r), rtol=1e-5)
  assert info["perturbed_aux"].shape == pred.shape


def test_value_and_grad_none_and_radius_zero_give_the_clean_gradient():
  params, x, key = awp_inputs()
  clean_key = jax.random.split(key, 3)[0]
  clean = jax.grad(lambda p: quadratic(p, x, clean_key)[0])(params)
  for kind, radius in (("none", 0.3), ("awp", 0.0), ("sam", 0.0)):
    _, grads, _ = perturb.value_and_grad(quadratic, kind, radius=radius, has_aux=True)(
        params, x, rng=key)
    chex.assert_trees_all_equal(grads, clean)


def test_value_and_grad_vmapped_over_traced_radii_equals_each_radius():
  params, x, key = awp_inputs()
  radii = jnp.array([0.0, 0.01, 0.1])
  sweep = jax.jit(jax.vmap(lambda r: perturb.value_and_grad(quadratic, "awp", radius=r,
                                                            has_aux=True)(params, x, rng=key)[1]))
  swept = sweep(radii)
  for i, radius in enumerate([0.0, 0.01, 0.1]):
    _, single, _ = perturb.value_and_grad(quadratic, "awp", radius=radius, has_aux=True)(
        params, x, rng=key)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], swept), single, rtol=1e-6,
                                atol=1e-7)
  assert not np.allclose(swept["dense"]["kernel"][0], swept["dense"]["kernel"][2])


def test_value_and_grad_rejects_unknown_kinds():
  with pytest.raises(ValueError, match="kind 'sam2'"):
    perturb.value_and_grad(quadratic, "sam2", radius=0.1)
