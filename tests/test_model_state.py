"""Model state (BatchNorm statistics) in the train step: kept from the clean pass under AWP.

A tiny Flax model x -> Dense(2, no bias) -> BatchNorm -> Dense(1): in train mode BatchNorm's new
running mean is 0.9 * old + 0.1 * mean_batch(x @ W), with W the first kernel the pass ran at, so
which pass the step kept is read off the running mean by hand (numpy).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import member_state
from vqa_jax.families import simple_vqa_loss
from vqa_jax import perturb
from vqa_jax.training import train_step

pytestmark = pytest.mark.usefixtures("fast_compile")

GAMMA = 0.3  # large, so that clean and perturbed statistics differ clearly


class TinyBN(nn.Module):
  """Dense(2) -> BatchNorm(momentum 0.9) -> Dense(1), 'backbone' and 'head' collections."""

  @nn.compact
  def __call__(self, x, *, train):
    h = nn.Dense(2, use_bias=False, name="backbone")(x)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h)
    return nn.Dense(1, name="head")(h)[..., 0]


MODEL = TinyBN()


def stateful_loss(params, model_state, batch, rng):
  del rng
  pred, new_state = MODEL.apply({"params": params, **model_state}, batch["video"], train=True,
                                mutable=["batch_stats"])
  return simple_vqa_loss.l1_rank_loss(pred, batch["label"]), (pred, dict(new_state))


def setup():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 3)).astype(np.float32) + 1.0
  batch = {"video": jnp.asarray(x), "label": jnp.asarray(rng.normal(size=8), jnp.float32)}
  variables = MODEL.init(jax.random.key(0), batch["video"], train=False)
  params, model_state = variables["params"], {"batch_stats": variables["batch_stats"]}
  return params, model_state, batch, optax.adam(1e-2)


def running_mean_after(kernel, x):
  """The running mean a train-mode pass at first-layer `kernel` leaves (old mean 0), by hand."""
  return 0.1 * (np.asarray(x, np.float64) @ np.asarray(kernel, np.float64)).mean(axis=0)


def new_mean(state):
  return np.asarray(state.model_state["batch_stats"]["bn"]["mean"])


def perturbed_kernel(params, model_state, batch):
  """The first kernel of the AWP perturbed pass (perturb.awp along the clean gradient)."""
  grads = jax.grad(lambda p: stateful_loss(p, model_state, batch, None)[0])(params)
  perturbed = perturb.awp(params, grads, GAMMA, perturb.weight_mask(params))
  return perturbed["backbone"]["kernel"]


def test_awp_keeps_the_clean_pass_batch_stats():
  params, model_state, batch, tx = setup()
  step = train_step.make_train_step(stateful_loss, tx, train_step.PerturbConfig("awp", GAMMA), 0.0,
                                    stateful=True)
  state = train_step.create_train_state(params, tx, model_state=model_state)
  new_state, _ = jax.jit(step)(state, batch, jax.random.key(1))
  clean = running_mean_after(params["backbone"]["kernel"], batch["video"])
  perturbed = running_mean_after(perturbed_kernel(params, model_state, batch), batch["video"])
  np.testing.assert_allclose(new_mean(new_state), clean, rtol=1e-5, atol=1e-7)
  assert np.abs(clean - perturbed).max() > 1e-3  # the two passes' statistics do differ
  assert np.abs(new_mean(new_state) - perturbed).max() > 1e-3
  # The update itself still used the perturbed gradient: params moved.
  assert not np.allclose(new_state.params["backbone"]["kernel"], params["backbone"]["kernel"])


def test_plain_step_keeps_its_one_pass_batch_stats():
  params, model_state, batch, tx = setup()
  step = train_step.make_train_step(stateful_loss, tx, train_step.PerturbConfig("none"), 0.0,
                                    stateful=True)
  state = train_step.create_train_state(params, tx, model_state=model_state)
  new_state, _ = jax.jit(step)(state, batch, jax.random.key(1))
  np.testing.assert_allclose(new_mean(new_state),
                             running_mean_after(params["backbone"]["kernel"], batch["video"]),
                             rtol=1e-5, atol=1e-7)


def test_every_k_reuse_step_keeps_the_perturbed_pass_batch_stats():
  params, model_state, batch, tx = setup()
  cfg = train_step.PerturbConfig("awp", GAMMA, every_k=2)
  step = jax.jit(train_step.make_train_step(stateful_loss, tx, cfg, 0.0, stateful=True))
  state = train_step.create_train_state(params, tx, cfg, model_state=model_state)
  state1, _ = step(state, batch, jax.random.key(1))  # fresh perturbation, clean statistics
  state2, metrics = step(state1, batch, jax.random.key(1))  # reuse: no clean pass
  assert float(metrics["recomputed"]) == 0.0
  kernel1 = state1.params["backbone"]["kernel"]
  delta = perturb.make_perturbation("awp", perturb.weight_mask(state1.params)).project(
      state1.params, state1.opt_state.perturbation.delta, GAMMA)
  reused_kernel = np.asarray(kernel1) + np.asarray(delta["backbone"]["kernel"])
  expected = 0.9 * new_mean(state1) + running_mean_after(reused_kernel, batch["video"])
  np.testing.assert_allclose(new_mean(state2), expected, rtol=1e-5, atol=1e-7)


def test_population_members_keep_their_clean_batch_stats():
  params, model_state, batch, tx = setup()
  cfgs = [train_step.PerturbConfig("awp", 0.0), train_step.PerturbConfig("awp", GAMMA)]
  step = train_step.make_population_step(stateful_loss, tx, cfgs, 0.0, stateful=True)
  state = train_step.create_train_state(params, tx, model_state=model_state)
  states, _ = jax.jit(step)(train_step.stack_states([state, state]), batch, jax.random.key(1))
  clean = running_mean_after(params["backbone"]["kernel"], batch["video"])
  for i in range(2):
    np.testing.assert_allclose(new_mean(member_state(states, i)), clean, rtol=1e-5,
                               atol=1e-7)


def test_stateless_losses_keep_model_state_none():
  params, _, batch, tx = setup()

  def plain_loss(p, b, rng):
    del rng
    pred = MODEL.apply({"params": p, "batch_stats": {"bn": {"mean": jnp.zeros(2),
                                                            "var": jnp.ones(2)}}},
                       b["video"], train=False)
    return simple_vqa_loss.l1_rank_loss(pred, b["label"]), pred

  step = train_step.make_train_step(plain_loss, tx, train_step.PerturbConfig("awp", GAMMA), 0.0)
  new_state, _ = jax.jit(step)(train_step.create_train_state(params, tx), batch,
                               jax.random.key(1))
  assert new_state.model_state is None and int(new_state.step) == 1
