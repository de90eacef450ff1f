"""The composed step: clean pass, AWP/RWP, perturbed pass, optax update (paper §1.2, §10 item 12)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vqa_jax import losses
from vqa_jax import optim
from vqa_jax import perturb
from vqa_jax import train_step


def linear_loss(params, batch, rng):
  """A linear scorer with multiplicative dropout-like noise keyed by rng."""
  noise = 1.0 + 0.1 * jax.random.normal(rng, batch["label"].shape)
  pred = (batch["video"] @ params["backbone"]["kernel"] + params["head"]["bias"]) * noise
  return losses.vqa_loss(pred, batch["label"]), pred


def setup(seed=0):
  rng = np.random.default_rng(seed)
  params = {"backbone": {"kernel": jnp.array(rng.normal(size=5), jnp.float32)},
            "head": {"bias": jnp.zeros((), jnp.float32)}}
  x = rng.normal(size=(8, 5)).astype(np.float32)
  batch = {"video": jnp.array(x), "label": jnp.array(x @ np.arange(5.0) + 0.1 * rng.normal(size=8),
                                                     jnp.float32)}
  tx = optax.adamw(1e-2, weight_decay=0.05)
  return params, batch, tx


def rngs_for(step_rng, step):
  clean, perturbed, noise = jax.random.split(jax.random.fold_in(step_rng, step), 3)
  return clean, perturbed, noise


def expected_update(params, tx, grads):
  updates, _ = tx.update(grads, tx.init(params), params)
  return optax.apply_updates(params, updates)


def assert_trees_close(a, b, **kw):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(x, y, **kw)


def test_plain_step_uses_clean_gradient():
  params, batch, tx = setup()
  step = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig(kind="none"), 0.9)
  key = jax.random.key(3)
  new_state, metrics = jax.jit(step)(train_step.create_train_state(params, tx), batch, key)
  clean_rng, _, _ = rngs_for(key, 0)
  grads = jax.grad(lambda p: linear_loss(p, batch, clean_rng)[0])(params)
  assert_trees_close(new_state.params, expected_update(params, tx, grads), rtol=1e-6)
  assert "perturbed_loss" not in metrics
  assert int(new_state.step) == 1


def test_awp_step_updates_unperturbed_weights_with_perturbed_point_gradient():
  params, batch, _ = setup()
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
  params, batch, tx = setup()
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


def test_gamma_zero_awp_equals_plain_step():
  params, batch, tx = setup()
  key = jax.random.key(6)
  a = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("awp", 0.0), 0.9)(
      train_step.create_train_state(params, tx), batch, key)[0]
  b = train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("none"), 0.9)(
      train_step.create_train_state(params, tx), batch, key)[0]
  assert_trees_close(a.params, b.params, rtol=0, atol=0)


def test_step_is_pure_and_ema_follows():
  params, batch, tx = setup()
  state = train_step.create_train_state(params, tx)
  before = jax.tree_util.tree_map(np.array, state)
  step = jax.jit(train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("rwp", 0.05), 0.9))
  new_state, _ = step(state, batch, jax.random.key(0))
  assert_trees_close(state, before, rtol=0, atol=0)  # the input state is not mutated
  again, _ = step(state, batch, jax.random.key(0))
  assert_trees_close(again, new_state, rtol=0, atol=0)  # same inputs, same outputs
  assert_trees_close(new_state.ema_params, optim.ema_update(params, new_state.params, 0.9), rtol=1e-6)


def test_awp_training_lowers_loss_on_fixed_batch():
  params, batch, tx = setup(1)
  step = jax.jit(train_step.make_train_step(linear_loss, tx, train_step.PerturbConfig("awp", 1e-2), 0.9))
  state = train_step.create_train_state(params, tx)
  first = None
  for _ in range(60):
    state, metrics = step(state, batch, jax.random.key(0))
    first = float(metrics["loss"]) if first is None else first
  assert float(metrics["loss"]) < 0.5 * first


def test_bad_perturb_config_is_rejected():
  with pytest.raises(ValueError, match="kind"):
    train_step.PerturbConfig(kind="sam2")
  with pytest.raises(ValueError, match="gamma"):
    train_step.PerturbConfig(kind="awp", gamma=-1.0)
