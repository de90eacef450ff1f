"""The composed step: clean pass, AWP/RWP, perturbed pass, optax update (paper §1.2, §10 item 12)."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import assert_trees_close
from tests.helpers import linear_loss
from tests.helpers import linear_problem
from tests.helpers import member_state
from tests.helpers import np_awp_delta
from tests.helpers import np_awp_project
from tests.helpers import np_awp_step
from vqa_jax.training import optim
from vqa_jax import perturb
from vqa_jax.training import train_step

pytestmark = pytest.mark.usefixtures("fast_compile")


def rngs_for(step_rng, step):
  clean, perturbed, noise = jax.random.split(jax.random.fold_in(step_rng, step), 3)
  return clean, perturbed, noise


def expected_update(params, tx, grads):
  updates, _ = tx.update(grads, tx.init(params), params)
  return optax.apply_updates(params, updates)


def test_plain_step_uses_clean_gradient():
  params, batch, tx = linear_problem()
  step = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig(kind="none"), 0.9)
  key = jax.random.key(3)
  new_state, metrics = jax.jit(step)(train_step.create_train_state(params, tx), batch, key)
  clean_rng, _, _ = rngs_for(key, 0)
  grads = jax.grad(lambda p: linear_loss(p, batch, clean_rng)[0])(params)
  assert_trees_close(new_state.params, expected_update(params, tx, grads), rtol=1e-6)
  assert "perturbed_loss" not in metrics
  assert int(new_state.step) == 1


def test_awp_step_updates_unperturbed_weights_with_perturbed_point_gradient():
  params, batch, _ = linear_problem()
  tx = optax.sgd(0.5)  # Adam's first step is sign(g)-like and could hide which gradient was used
  gamma = 0.05
  step = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("awp", gamma), 0.9)
  key = jax.random.key(4)
  state = train_step.create_train_state(params, tx)
  new_state, metrics = jax.jit(step)(state, batch, key)

  clean_rng, perturbed_rng, _ = rngs_for(key, 0)
  clean_grads = jax.grad(lambda p: linear_loss(p, batch, clean_rng)[0])(params)
  w_adv = perturb.awp(params, clean_grads, gamma, perturb.weight_mask(params))
  adv_grads = jax.grad(lambda p: linear_loss(p, batch, perturbed_rng)[0])(w_adv)
  assert_trees_close(new_state.params, expected_update(params, tx, adv_grads), rtol=1e-5)
  # The clean gradient is discarded: updating with it (or with the sum) gives other params.
  clean_update = expected_update(params, tx, clean_grads)
  assert not np.allclose(new_state.params["backbone"]["kernel"], clean_update["backbone"]["kernel"])
  np.testing.assert_allclose(metrics["perturbed_loss"], linear_loss(w_adv, batch, perturbed_rng)[0],
                             rtol=1e-5)
  # Only the kernel is in the mask: the perturbation norm is that of the kernel's step.
  np.testing.assert_allclose(
      metrics["perturbation_norm"],
      jnp.linalg.norm(w_adv["backbone"]["kernel"] - params["backbone"]["kernel"]), rtol=1e-5)
  assert float(metrics["perturbed_loss"]) > float(metrics["loss"]) - 1e-6 or gamma == 0


def test_reuse_dropout_rng_option_changes_perturbed_pass_key():
  params, batch, tx = linear_problem()
  key = jax.random.key(5)
  out = {}
  for reuse in (False, True):
    cfg = train_step.PerturbConfig("awp", 0.05, reuse_dropout_rng=reuse)
    out[reuse] = train_step.make_train_step(linear_loss, tx, cfg, 0.9)(
        train_step.create_train_state(params, tx), batch, key)[1]["perturbed_loss"]
  clean_rng, _, _ = rngs_for(key, 0)
  clean_grads = jax.grad(lambda p: linear_loss(p, batch, clean_rng)[0])(params)
  w_adv = perturb.awp(params, clean_grads, 0.05, perturb.weight_mask(params))
  np.testing.assert_allclose(out[True], linear_loss(w_adv, batch, clean_rng)[0], rtol=1e-6)
  assert not np.isclose(out[True], out[False])


def test_pair_dropout_rng_updates_with_the_plain_steps_masks():
  """Paired keys: the clean (ascent) pass draws the fresh key, the update pass the plain step's."""
  params, batch, _ = linear_problem()
  tx = optax.sgd(0.5)
  gamma = 0.05
  cfg = train_step.PerturbConfig("awp", gamma, pair_dropout_rng=True)
  key = jax.random.key(4)
  new_state, metrics = jax.jit(train_step.make_train_step(linear_loss, tx, cfg, 0.9))(
      train_step.create_train_state(params, tx), batch, key)
  plain_rng, fresh_rng, _ = rngs_for(key, 0)
  clean_grads = jax.grad(lambda p: linear_loss(p, batch, fresh_rng)[0])(params)
  w_adv = perturb.awp(params, clean_grads, gamma, perturb.weight_mask(params))
  adv_grads = jax.grad(lambda p: linear_loss(p, batch, plain_rng)[0])(w_adv)
  assert_trees_close(new_state.params, expected_update(params, tx, adv_grads), rtol=1e-5)
  np.testing.assert_allclose(metrics["loss"], linear_loss(params, batch, fresh_rng)[0], rtol=1e-5)
  np.testing.assert_allclose(metrics["perturbed_loss"], linear_loss(w_adv, batch, plain_rng)[0],
                             rtol=1e-5)
  with pytest.raises(ValueError, match="exclude each other"):
    train_step.PerturbConfig("awp", gamma, reuse_dropout_rng=True, pair_dropout_rng=True)


@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("combine", [0.0, 0.5])
def test_gamma_zero_awp_equals_plain_step(combine, pair):
  """At γ = 0 the update is the plain step's, whatever the keys' pairing and the mixing."""
  params, batch, tx = linear_problem()
  key = jax.random.key(6)
  cfg = train_step.PerturbConfig("awp", 0.0, combine=combine, pair_dropout_rng=pair)
  a = train_step.make_train_step(linear_loss, tx, cfg, 0.9)(
      train_step.create_train_state(params, tx), batch, key)[0]
  b = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("none"), 0.9)(
      train_step.create_train_state(params, tx), batch, key)[0]
  assert_trees_close(a.params, b.params, rtol=0, atol=0)


def test_step_is_pure_and_ema_follows():
  params, batch, tx = linear_problem()
  state = train_step.create_train_state(params, tx)
  before = jax.tree_util.tree_map(np.array, state)
  cfg = train_step.PerturbConfig("rwp", 0.05)
  step = jax.jit(train_step.make_train_step(linear_loss, tx, cfg, 0.9))
  new_state, _ = step(state, batch, jax.random.key(0))
  assert_trees_close(state, before, rtol=0, atol=0)  # the input state is not mutated
  again, _ = step(state, batch, jax.random.key(0))
  assert_trees_close(again, new_state, rtol=0, atol=0)  # same inputs, same outputs
  assert_trees_close(new_state.ema_params, optim.ema_update(params, new_state.params, 0.9),
                     rtol=1e-6)


def test_awp_training_lowers_loss_on_fixed_batch():
  params, batch, tx = linear_problem(1)
  cfg = train_step.PerturbConfig("awp", 1e-2)
  step = jax.jit(train_step.make_train_step(linear_loss, tx, cfg, 0.9))
  state = train_step.create_train_state(params, tx)
  first = None
  for _ in range(60):
    state, metrics = step(state, batch, jax.random.key(0))
    first = float(metrics["loss"]) if first is None else first
  assert float(metrics["loss"]) < 0.5 * first


def test_bad_perturb_config_is_rejected():
  with pytest.raises(ValueError, match="kind"):
    train_step.PerturbConfig(kind="sam2")
  with pytest.raises(ValueError, match="radius"):
    train_step.PerturbConfig(kind="awp", radius=-1.0)


def run_steps(step, state, batch, key, n):
  """(state, [metrics]) after n jitted steps on the same batch and key."""
  step = jax.jit(step)
  history = []
  for _ in range(n):
    state, metrics = step(state, batch, key)
    history.append(metrics)
  return state, history


@pytest.mark.parametrize("cfg", [train_step.PerturbConfig("rwp", 0.0),
                                 train_step.PerturbConfig("sam", radius=0.0),
                                 train_step.PerturbConfig("asam", radius=0.0, steps=3),
                                 train_step.PerturbConfig("awp", 0.0, every_k=2, combine=0.0)])
def test_zero_radius_is_the_plain_step_bit_for_bit(cfg):
  params, batch, tx = linear_problem()
  key = jax.random.key(7)
  plain = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("none"), 0.9)
  zero = train_step.make_train_step(linear_loss, tx, cfg, 0.9)
  a, _ = run_steps(zero, train_step.create_train_state(params, tx, cfg), batch, key, 3)
  b, _ = run_steps(plain, train_step.create_train_state(params, tx), batch, key, 3)
  assert_trees_close(a.params, b.params, rtol=0, atol=0)
  # every_k > 1 keeps its reuse state beside the optimizer's (train_step.ReusingOptState).
  tx_state = a.opt_state.optimizer if cfg.every_k > 1 else a.opt_state
  assert_trees_close(tx_state, b.opt_state, rtol=0, atol=0)


def quadratic_loss(params, batch, rng):
  """0.5·Σ a·w² over all leaves (a from the batch); no randomness."""
  del rng
  loss = sum(0.5 * jnp.sum(batch[k] * jnp.square(v)) for k, v in
             [("a_kernel", params["dense"]["kernel"]), ("a_bias", params["dense"]["bias"])])
  return loss, loss


def numpy_adamw(lr, wd, b1=0.9, b2=0.999, eps=1e-8):
  """A hand-written AdamW (PyTorch/optax semantics) on a dict of numpy arrays."""
  state = {"m": None, "v": None, "t": 0}

  def update(w, g):
    state["t"] += 1
    state["m"] = (1 - b1) * g if state["m"] is None else b1 * state["m"] + (1 - b1) * g
    state["v"] = (1 - b2) * g * g if state["v"] is None else b2 * state["v"] + (1 - b2) * g * g
    m_hat = state["m"] / (1 - b1 ** state["t"])
    v_hat = state["v"] / (1 - b2 ** state["t"])
    return w - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * w)

  return update


def test_awp_update_is_adamw_at_hand_computed_perturbed_point():
  gamma, lr, wd = 0.1, 1e-2, 0.05
  w = np.array([[1.0, 2.0], [0.0, -3.0]])
  b = np.array([0.5, -0.25])
  a_kernel, a_bias = np.array([[1.0, 0.5], [2.0, 0.25]]), np.array([1.0, 3.0])
  params = {"dense": {"kernel": jnp.asarray(w, jnp.float32), "bias": jnp.asarray(b, jnp.float32)}}
  batch = {"a_kernel": jnp.asarray(a_kernel, jnp.float32),
           "a_bias": jnp.asarray(a_bias, jnp.float32)}
  tx = optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=wd)
  step = train_step.make_train_step(quadratic_loss, tx, train_step.PerturbConfig("awp", gamma), 0.9)
  state, _ = run_steps(step, train_step.create_train_state(params, tx), batch, jax.random.key(0), 2)

  kernel_opt, bias_opt = numpy_adamw(lr, wd), numpy_adamw(lr, wd)
  for _ in range(2):
    g = a_kernel * w  # the clean gradient
    r = gamma * g / (np.linalg.norm(g) + 1e-6) * (np.linalg.norm(w) + 1e-6)
    w_adv = np.clip(w + r, w - gamma * np.abs(w), w + gamma * np.abs(w))
    # The bias is not perturbed, and its gradient does not depend on the kernel.
    w, b = kernel_opt(w, a_kernel * w_adv), bias_opt(b, a_bias * b)
  np.testing.assert_allclose(state.params["dense"]["kernel"], w, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(state.params["dense"]["bias"], b, rtol=1e-5, atol=1e-7)


def test_sam_kind_agrees_with_optax_contrib_sam():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(16, 3)).astype(np.float32), rng.normal(size=16).astype(np.float32)

  def loss(params, batch, key):
    del key
    err = batch["x"] @ params["w"]["kernel"] + params["w"]["bias"] - batch["y"]
    return jnp.mean(err ** 2), err

  params = {"w": {"kernel": jnp.asarray(rng.normal(size=3), jnp.float32), "bias": jnp.zeros(())}}
  batch = {"x": jnp.asarray(x), "y": jnp.asarray(y)}
  rho, outer = 0.05, optax.adam(1e-2)
  step = train_step.make_train_step(loss, outer, train_step.PerturbConfig("sam", radius=rho), 0.9,
                                    mask=perturb.full_mask(params))
  ours, _ = run_steps(step, train_step.create_train_state(params, outer), batch,
                      jax.random.key(0), 5)

  sam = optax.contrib.sam(outer, optax.chain(optax.contrib.normalize(), optax.sgd(rho)),
                          opaque_mode=True)
  grad = jax.grad(lambda p: loss(p, batch, None)[0])

  @jax.jit
  def sam_step(p, s):
    updates, s = sam.update(grad(p), s, p, grad_fn=lambda q, _: grad(q))
    return optax.apply_updates(p, updates), s

  p, s = params, sam.init(params)
  for _ in range(5):
    p, s = sam_step(p, s)
  assert_trees_close(ours.params, p, rtol=1e-5, atol=1e-7)


def regression_loss(params, batch, rng):
  """Mean squared error of a linear model whose output is scaled by s = 1 + 0.1·N(0, 1) from rng."""
  s = 1.0 + 0.1 * jax.random.normal(rng, ())
  pred = s * (batch["x"] @ params["dense"]["kernel"] + params["dense"]["bias"])
  return jnp.mean(jnp.square(pred - batch["y"])), pred


def regression_problem():
  """(params, batch) of `regression_loss`: 3 features, 8 examples; the kernel alone is perturbed."""
  rng = np.random.default_rng(12)
  x = rng.normal(size=(8, 3))
  y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=8)
  params = {"dense": {"kernel": jnp.asarray([0.5, -1.0, 2.0], jnp.float32),
                      "bias": jnp.asarray(0.1, jnp.float32)}}
  return params, {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(y, jnp.float32)}


def np_regression(w, b, batch, key):
  """(loss, dL/dw, dL/db) of `regression_loss` at kernel w and bias b, by hand in float64."""
  x, y = np.asarray(batch["x"], np.float64), np.asarray(batch["y"], np.float64)
  s = 1.0 + 0.1 * float(jax.random.normal(key, ()))
  r = s * (x @ w + b) - y
  return np.mean(r ** 2), 2 * s * x.T @ r / len(y), 2 * s * np.sum(r) / len(y)


def test_multistep_ascent_in_the_step():
  """steps=3: three projected ascent steps of γ/3, each from a fresh gradient at the current
  perturbed point (keys fold_in(perturbed key, i)); then SGD with the gradient at w + δ."""
  params, batch = regression_problem()
  lr, gamma, key = 0.1, 0.3, jax.random.key(8)
  tx = optax.sgd(lr)
  cfg = train_step.PerturbConfig("awp", gamma, steps=3)
  new_state, metrics = jax.jit(train_step.make_train_step(regression_loss, tx, cfg, 0.9))(
      train_step.create_train_state(params, tx), batch, key)

  w, b = np.asarray(params["dense"]["kernel"], np.float64), float(params["dense"]["bias"])
  clean_rng, perturbed_rng, _ = rngs_for(key, 0)
  _, g, _ = np_regression(w, b, batch, clean_rng)
  delta = np_awp_project(w, np_awp_step(w, g, gamma / 3), gamma)
  for i in (1, 2):
    _, g, _ = np_regression(w + delta, b, batch, jax.random.fold_in(perturbed_rng, i))
    delta = np_awp_project(w, delta + np_awp_step(w, g, gamma / 3), gamma)
  loss_adv, g_w, g_b = np_regression(w + delta, b, batch, perturbed_rng)
  np.testing.assert_allclose(new_state.params["dense"]["kernel"], w - lr * g_w, rtol=1e-5)
  np.testing.assert_allclose(new_state.params["dense"]["bias"], b - lr * g_b, rtol=1e-5)
  np.testing.assert_allclose(metrics["perturbed_loss"], loss_adv, rtol=1e-5)
  np.testing.assert_allclose(metrics["perturbation_norm"], np.linalg.norm(delta), rtol=1e-5)
  # Three steps end elsewhere than the single step of length γ (the test tells them apart).
  one_step = np_awp_delta(w, np_regression(w, b, batch, clean_rng)[1], gamma)
  assert np.linalg.norm(delta - one_step) > 1e-2 * np.linalg.norm(one_step)


def test_combine_mixes_clean_and_perturbed_gradients():
  params, batch, _ = linear_problem()
  tx = optax.sgd(0.5)
  key = jax.random.key(9)
  cfg = train_step.PerturbConfig("awp", 0.05, combine=0.25)
  new_state, _ = jax.jit(train_step.make_train_step(linear_loss, tx, cfg, 0.9))(
      train_step.create_train_state(params, tx), batch, key)
  clean_rng, perturbed_rng, _ = rngs_for(key, 0)
  grad = lambda p, k: jax.grad(lambda q: linear_loss(q, batch, k)[0])(p)
  g_clean = grad(params, clean_rng)
  g_adv = grad(perturb.awp(params, g_clean, 0.05, perturb.weight_mask(params)), perturbed_rng)
  mixed = jax.tree_util.tree_map(lambda a, c: 0.75 * a + 0.25 * c, g_adv, g_clean)
  assert_trees_close(new_state.params, expected_update(params, tx, mixed), rtol=1e-5)


def test_every_k_reuses_the_last_perturbation_between_recomputations():
  """every_k=2, by hand: steps 0 and 2 recompute δ (clean pass, AWP step, perturbed pass with the
  perturbed key); step 1 projects the last δ onto the moved weights' feasible set and runs its
  one pass there with the clean key, whose loss is the step's `loss`."""
  params, batch = regression_problem()
  lr, gamma, key = 0.1, 0.3, jax.random.key(10)
  tx = optax.sgd(lr)
  cfg = train_step.PerturbConfig("awp", gamma, every_k=2)
  state, history = run_steps(train_step.make_train_step(regression_loss, tx, cfg, 0.9),
                             train_step.create_train_state(params, tx, cfg), batch, key, 3)
  assert [float(m["recomputed"]) for m in history] == [1.0, 0.0, 1.0]

  w, b = np.asarray(params["dense"]["kernel"], np.float64), float(params["dense"]["bias"])
  for i in range(3):
    clean_rng, perturbed_rng, _ = rngs_for(key, i)
    if i % 2 == 0:  # fresh
      loss, g, _ = np_regression(w, b, batch, clean_rng)
      delta = np_awp_delta(w, g, gamma)
      _, g_w, g_b = np_regression(w + delta, b, batch, perturbed_rng)
    else:  # reuse
      delta = np_awp_project(w, delta, gamma)
      loss, g_w, g_b = np_regression(w + delta, b, batch, clean_rng)
    np.testing.assert_allclose(history[i]["loss"], loss, rtol=1e-5)
    w, b = w - lr * g_w, b - lr * g_b
  np.testing.assert_allclose(state.params["dense"]["kernel"], w, rtol=1e-5)
  np.testing.assert_allclose(state.params["dense"]["bias"], b, rtol=1e-5)
  kept = state.opt_state.perturbation.delta  # step 2's δ; the bias is never perturbed
  np.testing.assert_allclose(kept["dense"]["kernel"], delta, rtol=1e-5)
  assert float(kept["dense"]["bias"]) == 0.0


def test_every_k_logs_clean_grad_norm_only_on_steps_with_a_clean_pass():
  """every_k=2: steps 0 and 2 log the hand-computed clean gradient's norm; step 1 (reuse, no clean
  pass) logs none, rather than a 0 that reads like a measurement."""
  params, batch = regression_problem()
  lr, gamma, key = 0.1, 0.3, jax.random.key(11)
  tx = optax.sgd(lr)
  cfg = train_step.PerturbConfig("awp", gamma, every_k=2)
  _, history = run_steps(train_step.make_train_step(regression_loss, tx, cfg, 0.9),
                         train_step.create_train_state(params, tx, cfg), batch, key, 3)
  logged = [train_step.logged_metrics(m) for m in history]
  assert ["clean_grad_norm" in m for m in logged] == [True, False, True]
  assert all("grad_norm" in m and "loss" in m for m in logged)
  w, b = np.asarray(params["dense"]["kernel"], np.float64), float(params["dense"]["bias"])
  for i in range(3):
    clean_rng, perturbed_rng, _ = rngs_for(key, i)
    if i % 2 == 0:
      _, g_w, g_b = np_regression(w, b, batch, clean_rng)
      np.testing.assert_allclose(logged[i]["clean_grad_norm"], np.sqrt(g_w @ g_w + g_b ** 2),
                                 rtol=1e-5)
      delta = np_awp_delta(w, g_w, gamma)
      _, g_w, g_b = np_regression(w + delta, b, batch, perturbed_rng)
    else:
      delta = np_awp_project(w, delta, gamma)
      _, g_w, g_b = np_regression(w + delta, b, batch, clean_rng)
    w, b = w - lr * g_w, b - lr * g_b
  # Without every_k every step has a clean pass, and the metrics are logged as they are.
  plain = train_step.PerturbConfig("awp", gamma)
  _, history = run_steps(train_step.make_train_step(regression_loss, tx, plain, 0.9),
                         train_step.create_train_state(params, tx, plain), batch, key, 1)
  assert set(train_step.logged_metrics(history[0])) == set(history[0])


def test_every_k_skips_the_clean_pass_on_reuse_steps():
  params, batch, tx = linear_problem()
  calls = []

  def counting_loss(p, b, k):
    jax.debug.callback(lambda: calls.append(1))
    return linear_loss(p, b, k)

  cfg = train_step.PerturbConfig("awp", 0.05, every_k=2)
  state, _ = run_steps(train_step.make_train_step(counting_loss, tx, cfg, 0.9),
                       train_step.create_train_state(params, tx, cfg), batch, jax.random.key(0), 4)
  jax.block_until_ready(state)
  jax.effects_barrier()
  assert len(calls) == 2 + 1 + 2 + 1  # plain: 4, AWP every step: 8


def test_every_k_needs_its_reuse_state_in_opt_state():
  params, batch, tx = linear_problem()
  cfg = train_step.PerturbConfig("awp", every_k=2)
  step = train_step.make_train_step(linear_loss, tx, cfg, 0.9)
  with pytest.raises(ValueError, match="opt_state"):
    step(train_step.create_train_state(params, tx), batch, jax.random.key(0))


# One population per kind: its members differ in their radius only.
POPULATIONS = {"awp": [0.0, 0.05, 0.02], "rwp": [0.05, 0.0], "sam": [0.1], "asam": [0.1, 0.0]}


@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("every_k", [1, 2])
@pytest.mark.parametrize("kind", sorted(POPULATIONS))
def test_population_member_equals_single_run(kind, every_k, pair, combine=0.0):
  params, batch, tx = linear_problem()
  key = jax.random.key(11)
  cfgs = [train_step.PerturbConfig(kind, r, every_k=every_k, pair_dropout_rng=pair,
                                   combine=combine)
          for r in POPULATIONS[kind]]
  states = train_step.stack_states([train_step.create_train_state(params, tx, c) for c in cfgs])
  states, history = run_steps(train_step.make_population_step(linear_loss, tx, cfgs, 0.9), states,
                              batch, key, 3)
  assert history[0]["loss"].shape == (len(cfgs),)
  singles = [run_steps(train_step.make_train_step(linear_loss, tx, cfg, 0.9),
                       train_step.create_train_state(params, tx, cfg), batch, key, 3)[0]
             for cfg in cfgs]
  plain = run_steps(train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("none"),
                                               0.9),
                    train_step.create_train_state(params, tx), batch, key, 3)[0]
  for i, (cfg, single) in enumerate(zip(cfgs, singles)):
    member = member_state(states, i)
    assert_trees_close(member.params, single.params, rtol=1e-6, atol=1e-7)
    assert_trees_close(member.ema_params, single.ema_params, rtol=1e-6, atol=1e-7)
    if cfg.active:  # the perturbed members really differ from the plain run
      assert not np.allclose(member.params["backbone"]["kernel"],
                             plain.params["backbone"]["kernel"])
    else:  # radius-0 members follow the plain run
      assert_trees_close(member.params, plain.params, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("pair", [False, True])
def test_population_member_with_combine_equals_single_run(pair):
  """Mixed gradients (combine > 0): perturbed members match their runs, radius-0 ones the plain."""
  test_population_member_equals_single_run("awp", 1, pair, combine=0.5)


def test_population_members_must_share_the_schedule_and_the_kind():
  _, _, tx = linear_problem()
  with pytest.raises(ValueError, match="steps"):
    train_step.make_population_step(
        linear_loss, tx, [train_step.PerturbConfig("awp", steps=1),
                          train_step.PerturbConfig("awp", steps=2)], 0.9)
  with pytest.raises(ValueError, match="kind: awp != rwp .one population per kind"):
    train_step.make_population_step(
        linear_loss, tx, [train_step.PerturbConfig("awp"), train_step.PerturbConfig("rwp")], 0.9)


def test_perturb_config_from_config_section():
  from vqa_jax.config import config_base  # pylint: disable=g-import-not-at-top
  from vqa_jax.config import validation  # pylint: disable=g-import-not-at-top
  c = config_base.base_config()
  assert train_step.PerturbConfig.from_config(c.perturb) == train_step.PerturbConfig("awp", 1e-4)
  c.perturb.kind, c.perturb.rho, c.perturb.steps, c.perturb.every_k = "sam", 0.1, 2, 4
  cfg = train_step.PerturbConfig.from_config(c.perturb)
  assert (cfg.kind, cfg.radius, cfg.steps, cfg.every_k) == ("sam", 0.1, 2, 4)  # rho, not gamma
  c.perturb.kind = "none"
  assert train_step.PerturbConfig.from_config(c.perturb).radius == 0.0
  c.perturb.combine = 0.5
  with pytest.raises(ValueError, match="perturb: .*combine"):
    validation.validate(c)
  c.perturb.every_k, c.perturb.steps = 1, 0
  with pytest.raises(ValueError, match="perturb: .*steps"):
    validation.validate(c)


@pytest.mark.parametrize("cfg", [train_step.PerturbConfig("none"),
                                 train_step.PerturbConfig("awp", 0.05),
                                 train_step.PerturbConfig("awp", 0.05, every_k=2)])
def test_the_jitted_step_traces_once(cfg):
  params, _, tx = linear_problem()
  chex.clear_trace_counter()  # counts are per function code, shared by the parametrized cases
  step = chex.assert_max_traces(train_step.make_train_step(linear_loss, tx, cfg, 0.9), n=1)
  jitted = jax.jit(step)
  state = train_step.create_train_state(params, tx, cfg)
  for i in range(4):  # new step counts, batches, keys, every_k's recompute flag: one trace
    batch = linear_problem(seed=i + 1)[1]  # fresh arrays of the same shapes and dtypes
    state, _ = jitted(state, batch, jax.random.key(i))
  assert int(state.step) == 4
  assert jitted._cache_size() == 1  # pylint: disable=protected-access  (one compiled program)
