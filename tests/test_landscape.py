"""Loss landscapes and sharpness: directions, vmapped surfaces, Hessians, gaps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tests.helpers import zip_leaves
from tests.landscape_toys import ToyVQA
from tests.landscape_toys import ols_slope_p
from tests.landscape_toys import toy_data
from vqa_jax.families import losses
from vqa_jax import perturb
from vqa_jax.landscape import analysis
from vqa_jax.landscape import directions
from vqa_jax.landscape import fixed_set
from vqa_jax.landscape import gap
from vqa_jax.landscape import sharpness
from vqa_jax.landscape import surface


@pytest.fixture(scope="module")
def toy():
  model = ToyVQA()
  data = toy_data()
  params = model.init(jax.random.key(1), jnp.asarray(data.video[:, 0]), train=False)["params"]
  return model, params, data


def plain_loss(model, params, data, loss_batch=4):
  """The training loss computed the plain way: one apply per minibatch, mean of vqa_loss."""
  values = []
  for start in range(0, len(data.label), loss_batch):
    video = jnp.asarray(data.video[start:start + loss_batch])
    b, clips = video.shape[:2]
    quality = model.apply({"params": params}, video.reshape((b * clips,) + video.shape[2:]),
                          train=False)
    pred = quality.reshape(b, -1).mean(axis=1)
    values.append(losses.vqa_loss(pred, jnp.asarray(data.label[start:start + loss_batch]), 0.3))
  return float(np.mean(values))


def evaluator(model, video_batch=3, point_chunk=2):
  return surface.SurfaceEvaluator(analysis.make_predict(model), video_batch=video_batch,
                                  point_chunk=point_chunk, loss_batch=4, rank_weight=0.3)


# ---------------------------------------------------------------------------------- directions


def test_filter_normalisation_matches_weight_filter_norms():
  """Each output unit (the LAST axis of Flax kernels) gets the norm of the weight's filter."""
  rng = np.random.default_rng(0)
  params = {"conv": {"kernel": jnp.asarray(rng.normal(size=(2, 3, 3, 4, 5)), jnp.float32),
                     "bias": jnp.ones(5)},
            "dense": {"kernel": jnp.asarray(rng.normal(size=(6, 7)), jnp.float32)},
            "norm": {"scale": jnp.full(6, 2.0), "bias": jnp.zeros(6)},
            "attn": {"relative_position_bias_table": jnp.ones((9, 2))}}
  d = directions.random_direction(jax.random.key(0), params)
  for name, out in (("conv", 5), ("dense", 7)):
    w = np.asarray(params[name]["kernel"]).reshape(-1, out)
    got = np.linalg.norm(np.asarray(d[name]["kernel"]).reshape(-1, out), axis=0)
    np.testing.assert_allclose(got, np.linalg.norm(w, axis=0), rtol=1e-5)
    # Normalising over the wrong axis (the first) would not give these norms.
    assert not np.allclose(np.linalg.norm(np.asarray(d[name]["kernel"]).reshape(
        d[name]["kernel"].shape[0], -1), axis=1), np.linalg.norm(np.asarray(
            params[name]["kernel"]).reshape(params[name]["kernel"].shape[0], -1), axis=1))
  # Biases, norm parameters and bias tables are zero by default ...
  for leaf in (d["conv"]["bias"], d["norm"]["scale"], d["norm"]["bias"],
               d["attn"]["relative_position_bias_table"]):
    assert not np.any(np.asarray(leaf))
  # ... and normalised with include_biases_and_norms: a 1-D leaf is one filter (‖w‖ = √6·2 here).
  d_all = directions.random_direction(jax.random.key(0), params, include_biases_and_norms=True)
  np.testing.assert_allclose(np.linalg.norm(d_all["norm"]["scale"]), 2 * np.sqrt(6), rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(d_all["attn"]["relative_position_bias_table"], axis=0),
                             [3.0, 3.0], rtol=1e-5)
  assert not np.any(np.asarray(d_all["norm"]["bias"]))  # zero weights -> zero filter


def test_combine_is_weights_plus_coefficient_sum():
  params = {"kernel": jnp.array([[1.0, 2.0]])}
  stacked = directions.stack([{"kernel": jnp.array([[1.0, 0.0]])},
                              {"kernel": jnp.array([[0.0, 1.0]])}])
  out = directions.combine(params, stacked, jnp.array([0.5, -2.0]))
  np.testing.assert_allclose(out["kernel"], [[1.5, 0.0]])


# ---------------------------------------------------------------------------------- surfaces


def test_landscape_at_alpha_zero_equals_plain_loss(toy):
  """The origin of the analyzer's landscape (and its AWP line at 0) is the plainly computed loss."""
  model, params, data = toy
  cfg = analysis.AnalysisConfig(line_points=3, plane_points=2, num_directions=2,
                                awp_gamma_max=0.1, sharpness_alpha=0.1)
  an = analysis.Analyzer(model, cfg, loss_batch=4, rank_weight=0.3, video_batch=3, point_chunk=2)
  record, sharp = an.landscape(params, data)
  expected = plain_loss(model, params, data)
  np.testing.assert_allclose(sharp["loss"], expected, rtol=1e-5)
  np.testing.assert_allclose(record["random"]["loss"][0][1], expected, rtol=1e-5)  # alphas -1, 0, 1
  np.testing.assert_allclose(record["awp"]["loss"][1], expected, rtol=1e-5)
  np.testing.assert_allclose(an.metrics(params, data)["loss"], expected, rtol=1e-5)


def test_vmapped_grid_equals_python_loop(toy):
  model, params, data = toy
  ev = evaluator(model)
  d1 = directions.random_direction(jax.random.key(2), params)
  d2 = directions.random_direction(jax.random.key(3), params)
  coords = np.array([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.7]], np.float32)  # 3 points, chunks of 2
  got = ev.linear(params, directions.stack([d1, d2]), coords, data)
  for (a, b), loss in zip(coords, got["loss"]):
    moved = jax.tree_util.tree_map(lambda w, x, y: w + a * x + b * y, params, d1, d2)
    np.testing.assert_allclose(loss, plain_loss(model, moved, data), rtol=1e-5)


def test_awp_landscape_at_gamma_equals_perturbed_loss(toy):
  model, params, data = toy
  ev = evaluator(model)
  gamma = 0.05
  video, label = jnp.asarray(data.video), jnp.asarray(data.label)
  grads = jax.grad(lambda p: ev.loss_fn(p, video, label))(params)
  perturbed = perturb.awp(params, grads, gamma, perturb.weight_mask(params))
  line = surface.awp_line(ev, params, [-gamma, 0.0, gamma], data)
  np.testing.assert_allclose(line["loss"][2], plain_loss(model, perturbed, data), rtol=1e-5)
  against = perturb.awp(params, jax.tree_util.tree_map(jnp.negative, grads), gamma,
                        perturb.weight_mask(params))
  np.testing.assert_allclose(line["loss"][0], plain_loss(model, against, data), rtol=1e-5)
  assert line["loss"][2] > line["loss"][1]  # uphill along the gradient


def test_one_minus_srcc_matches_scipy():
  pred = np.array([[0.1, 0.4, 0.35, 0.8], [4.0, 3.0, 2.0, 1.0]])
  label = np.array([2.0, 3.0, 4.0, 5.0])
  np.testing.assert_allclose(surface.one_minus_srcc(pred, label), [1 - 0.8, 2.0])


def test_set_loss_rejects_sets_not_divisible_by_the_loss_batch():
  with pytest.raises(ValueError, match="minibatches of loss_batch=4"):
    surface.set_loss(jnp.zeros(6), jnp.zeros(6), 4, 0.3)


# ---------------------------------------------------------------------------------- sharpness


def quadratic(seed=0, diagonal=False):
  """L(w) = ½ wᵀAw over a two-leaf tree (10 numbers), its A and eigenvalues."""
  rng = np.random.default_rng(seed)
  eigenvalues = np.array([5.0, 2.0, 1.5, 1.0, 0.5, 0.2, -0.1, -0.3, 0.05, 0.0])
  q = np.eye(10) if diagonal else np.linalg.qr(rng.normal(size=(10, 10)))[0]
  a = q @ np.diag(eigenvalues) @ q.T
  params = {"layer": {"kernel": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
                      "bias": jnp.asarray(rng.normal(size=4), jnp.float32)}}

  def loss_fn(p):
    w = jnp.concatenate([p["layer"]["bias"], p["layer"]["kernel"].reshape(-1)])
    return 0.5 * w @ jnp.asarray(a, jnp.float32) @ w

  return loss_fn, params, a, eigenvalues


def test_top_eigenvalue_of_known_hessian():
  loss_fn, params, _, eigenvalues = quadratic()
  eigenvalue, _ = jax.jit(lambda p, k: sharpness.top_eigenvalue(loss_fn, p, k, iters=60))(
      params, jax.random.key(0))
  np.testing.assert_allclose(eigenvalue, eigenvalues.max(), rtol=1e-4)


def test_hvp_equals_matrix_product():
  loss_fn, params, a, _ = quadratic()
  v = {"layer": {"kernel": jnp.ones((3, 2)), "bias": jnp.arange(4.0)}}
  hv = sharpness.hvp(loss_fn, params, v)
  flat_v = np.concatenate([np.arange(4.0), np.ones(6)])
  flat_hv = np.concatenate([hv["layer"]["bias"], hv["layer"]["kernel"].reshape(-1)])
  np.testing.assert_allclose(flat_hv, a @ flat_v, rtol=1e-5, atol=1e-5)


@jax.custom_vjp
def cube(x):
  """x³ with a hand-written VJP whose forward rule calls the function itself, as the Video Swin's
  gate_mix does (jax.jvp of jax.grad then raises on it)."""
  return x ** 3


cube.defvjp(lambda x: (cube(x), x), lambda x, g: (3 * x ** 2 * g,))


def test_hvp_goes_through_custom_vjp_functions():
  """Forward mode (jax.jvp) rejects custom_vjp; the HVP must still work (H of Σ x³ = diag(6x))."""
  x = jnp.array([1.0, -2.0, 0.5])
  loss_fn = lambda p: jnp.sum(cube(p["w"]))
  hv = sharpness.hvp(loss_fn, {"w": x}, {"w": jnp.array([1.0, 1.0, 2.0])})
  np.testing.assert_allclose(hv["w"], [6.0, -12.0, 6.0], rtol=1e-6)


def test_hutchinson_trace_of_known_hessian():
  # Diagonal Hessian: every Rademacher probe gives vᵀAv = tr(A) exactly.
  loss_fn, params, a, _ = quadratic(diagonal=True)
  trace, stderr = sharpness.hutchinson_trace(loss_fn, params, jax.random.key(0), probes=4)
  np.testing.assert_allclose(trace, np.trace(a), rtol=1e-5)
  assert stderr < 1e-5
  # Rotated Hessian: the estimate is unbiased; 400 probes land within 4 standard errors.
  loss_fn, params, a, _ = quadratic()
  trace, stderr = jax.jit(lambda p, k: sharpness.hutchinson_trace(loss_fn, p, k, probes=400))(
      params, jax.random.key(1))
  assert 0 < stderr < 0.5
  assert abs(float(trace) - np.trace(a)) < 4 * float(stderr)


def test_worst_case_in_ball_beats_random_points_of_the_ball():
  rng = np.random.default_rng(0)
  params = {"a": {"kernel": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)},
            "b": {"scale": jnp.asarray(1 + rng.normal(size=5) * 0.1, jnp.float32),
                  "bias": jnp.zeros(5)}}
  target = jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32),
                                  params)

  def loss_fn(p):
    return sum(jnp.sum(jnp.sin(3 * w) + (w - t) ** 2) for w, t in zip_leaves(p, target))

  gamma, mask = 0.1, perturb.weight_mask(params)
  worst, delta = sharpness.worst_case_in_ball(loss_fn, params, gamma=gamma, steps=10)
  np.testing.assert_allclose(worst, loss_fn(perturb.apply_delta(params, delta, mask)), rtol=1e-6)
  pert = perturb.make_perturbation("rwp", mask)
  random_losses = []
  for i in range(200):
    key_dir, key_scale = jax.random.split(jax.random.key(i))
    d = pert.direction(params, None, key_dir)
    radius = gamma * float(jax.random.uniform(key_scale))
    random_delta = pert.project(params, pert.step(params, d, radius), gamma)
    random_losses.append(float(loss_fn(perturb.apply_delta(params, random_delta, mask))))
  assert float(worst) >= max(random_losses)
  assert float(worst) > float(loss_fn(params))


# ---------------------------------------------------------------------------------- gaps


def test_correlation_matches_scipy_and_hand_pearson():
  x = np.array([0.1, 0.5, 0.2, 0.9, 0.4, 0.7])
  y = np.array([0.05, 0.3, 0.2, 0.4, 0.1, 0.45])
  c = gap.correlation(x, y)
  hand_r = np.sum((x - x.mean()) * (y - y.mean())) / np.sqrt(
      np.sum((x - x.mean()) ** 2) * np.sum((y - y.mean()) ** 2))
  np.testing.assert_allclose(c["pearson_r"], hand_r, rtol=1e-12)
  np.testing.assert_allclose(c["pearson_p"], stats.pearsonr(x, y).pvalue, rtol=1e-12)
  # Ranks of x: 1 4 2 6 3 5; of y: 1 4 3 5 2 6 -> Σd² = 0+0+1+1+1+1 = 4, ρ = 1 − 6·4/(6·35).
  np.testing.assert_allclose(c["spearman_rho"], 1 - 6 * 4 / (6 * 35), rtol=1e-12)
  np.testing.assert_allclose(c["spearman_p"], stats.spearmanr(x, y).pvalue, rtol=1e-12)
  assert c["n"] == 6


def test_gap_is_train_minus_test_for_srcc_and_loss():
  """The gap is train metric minus test metric; a lower training loss makes the loss gap negative."""
  g = gap.generalization_gap({"srcc": 0.9, "loss": 0.1}, {"srcc": 0.7, "loss": 0.25})
  np.testing.assert_allclose([g["srcc_gap"], g["loss_gap"]], [0.2, -0.15])
  rows = [{"name": str(i), "sharp": s, "srcc_gap": s * 2 + 1} for i, s in enumerate([1, 3, 2, 5])]
  table = gap.correlation_table(rows, ["sharp"], ["srcc_gap"])
  np.testing.assert_allclose(table["sharp"]["srcc_gap"]["pearson_r"], 1.0)
  with pytest.raises(KeyError, match="row 0"):
    gap.correlation_table([{"name": "0"}] * 3, ["sharp"], ["srcc_gap"])


# Two seeds of three runs. Seed means: x 2 and 11, y 2 and 6. Demeaned x: -1 0 1 | -1 0 1;
# demeaned y: -1 1 0 | -1 -1 2 -> Sxy = 1 + 3 = 4, Sxx = 4, Syy = 2 + 6 = 8, r = 4 / sqrt(32).
# Within-seed ranks: x 1 2 3 | 1 2 3, y 1 3 2 | 1.5 1.5 3 -> centred y -1 1 0 | -.5 -.5 1:
# Sxy = 1 + 1.5 = 2.5, Sxx = 4, Syy = 2 + 1.5 = 3.5, rho = 2.5 / sqrt(14). dof = 6 - 2 - 1 = 3.
WITHIN_X = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0]
WITHIN_Y = [1.0, 3.0, 2.0, 5.0, 5.0, 8.0]
WITHIN_SEED = [0, 0, 0, 1, 1, 1]


def test_within_group_correlation_matches_hand_values_and_dummy_regression():
  c = gap.within_group_correlation(WITHIN_X, WITHIN_Y, WITHIN_SEED)
  np.testing.assert_allclose(c["pearson_r"], 4 / np.sqrt(32), rtol=1e-12)
  np.testing.assert_allclose(c["spearman_rho"], 2.5 / np.sqrt(14), rtol=1e-12)
  assert (c["n"], c["groups"], c["dof"]) == (6, 2, 3)
  # The within-seed test is the test of x's slope once every seed has its own intercept.
  np.testing.assert_allclose(c["pearson_p"], ols_slope_p(np.asarray(WITHIN_X),
                                                         np.asarray(WITHIN_Y), WITHIN_SEED),
                             rtol=1e-9)
  rho = 2.5 / np.sqrt(14)
  t = rho * np.sqrt(3 / (1 - rho ** 2))  # the t statistic of a correlation with dof = 3
  np.testing.assert_allclose(c["spearman_p"], 2 * stats.t.sf(t, 3), rtol=1e-9)
  # Pooled, the seed offset alone makes x and y look strongly related.
  assert gap.correlation(WITHIN_X, WITHIN_Y)["pearson_r"] > 0.85


def test_within_group_spearman_is_mean_of_per_group_spearman():
  """Equal groups without ties: the pooled within-group ranks give the mean per-group rho."""
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=12), rng.normal(size=12)
  groups = np.repeat([0, 1, 2], 4)
  per_group = [stats.spearmanr(x[groups == g], y[groups == g]).statistic for g in range(3)]
  c = gap.within_group_correlation(x, y, groups.tolist())
  np.testing.assert_allclose(c["spearman_rho"], np.mean(per_group), rtol=1e-12)


def test_within_group_correlation_rejects_singleton_groups_and_table_uses_it():
  with pytest.raises(ValueError, match="fewer than 2 members"):
    gap.within_group_correlation([1, 2, 3, 4], [1, 3, 2, 4], [0, 0, 0, 1])
  # A measure constant within every seed (it varies only between seeds) has no within-seed r.
  assert np.isnan(gap.within_group_correlation([1, 1, 2, 2, 2], [1, 2, 3, 5, 4],
                                               [0, 0, 1, 1, 1])["pearson_r"])
  rows = [{"name": str(i), "x": x, "y": y, "seed": s}
          for i, (x, y, s) in enumerate(zip(WITHIN_X, WITHIN_Y, WITHIN_SEED))]
  table = gap.correlation_table(rows, ["x"], ["y"], within="seed")
  np.testing.assert_allclose(table["x"]["y"]["pearson_r"], 4 / np.sqrt(32), rtol=1e-12)
  with pytest.raises(KeyError, match="lacks \\['seed'\\]"):
    gap.correlation_table([{k: v for k, v in r.items() if k != "seed"} for r in rows], ["x"],
                          ["y"], within="seed")


def test_spread_indices():
  np.testing.assert_array_equal(fixed_set.spread_indices(10, 4), [0, 3, 6, 9])
  np.testing.assert_array_equal(fixed_set.spread_indices(3, 8), [0, 1, 2])
