"""The reference schedule (paper §10 item 10), the two learning-rate groups and decoupled decay."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vqa_jax.config import config_base
from vqa_jax.training import optim


def train_cfg(**fields) -> ml_collections.ConfigDict:
  """A train section: base_config's with `fields` set."""
  cfg = config_base.base_config().train
  cfg.update(fields)
  return cfg


@pytest.mark.parametrize("step,value", [(0, 0.0), (1, 2.28e-4), (4385, 1.0), (26310, 0.629410),
                                        (52620, 0.017037)])
def test_reference_schedule_lsvq(step, value):
  f = optim.reference_schedule(warmup_steps=4385, cosine_steps=52620)
  np.testing.assert_allclose(float(f(step)), value, rtol=2e-3, atol=1e-6)


def test_two_groups_and_decay_on_every_leaf():
  cfg = train_cfg(learning_rate=1e-2, backbone_lr_mult=0.1, weight_decay=0.5, warmup_steps=0,
                  cosine_steps=1000)
  tx = optim.make_optimizer(cfg)
  params = {"backbone": {"kernel": jnp.full(3, 2.0), "bias": jnp.full(3, 2.0)},
            "head": {"kernel": jnp.full(3, 2.0)}}
  state = tx.init(params)
  zero = {"backbone": {"kernel": jnp.zeros(3), "bias": jnp.zeros(3)}, "head": {"kernel": jnp.zeros(3)}}
  updates, _ = tx.update(zero, state, params)
  # With a zero gradient only the decoupled decay acts: p <- p - lr_group * wd * p (f(0) = 1 here).
  np.testing.assert_allclose(updates["head"]["kernel"], -1e-2 * 0.5 * 2.0, rtol=1e-6)
  np.testing.assert_allclose(updates["backbone"]["kernel"], -1e-3 * 0.5 * 2.0, rtol=1e-6)
  np.testing.assert_allclose(updates["backbone"]["bias"], -1e-3 * 0.5 * 2.0, rtol=1e-6)


def test_ema_update():
  out = optim.ema_update({"w": jnp.array(1.0)}, {"w": jnp.array(3.0)}, decay=0.9)
  np.testing.assert_allclose(out["w"], 0.9 * 1.0 + 0.1 * 3.0, rtol=1e-6)


def test_frozen_backbone_then_fresh_adam_at_the_global_schedule():
  # Linear probe (paper §7.6): for P steps the backbone gets no update and no decay; at step P it
  # takes a first Adam step (bias correction from 1) with lr_b * f(P), f the global schedule.
  cfg = train_cfg(learning_rate=1e-2, backbone_lr_mult=0.1, weight_decay=0.0, warmup_steps=4,
                  cosine_steps=10, freeze_backbone_steps=3)
  tx = optim.make_optimizer(cfg)
  params = {"backbone": {"kernel": jnp.full(2, 1.0)}, "head": {"kernel": jnp.full(2, 1.0)}}
  grads = {"backbone": {"kernel": jnp.array([0.5, -2.0])},
           "head": {"kernel": jnp.array([1.0, 1.0])}}
  state = tx.init(params)
  f = optim.reference_schedule(4, 10)
  for step in range(4):
    updates, state = tx.update(grads, state, params)
    if step < 3:
      np.testing.assert_array_equal(updates["backbone"]["kernel"], 0.0)
    # Adam's first step moves each coordinate by lr * sign(g) (up to eps and float32 bias
    # correction rounding, 1e-5); the head at every step
    # sees the same gradient, so its normalised step stays lr * f(step) * sign(g).
    np.testing.assert_allclose(updates["head"]["kernel"], -1e-2 * float(f(step)), rtol=1e-4)
  np.testing.assert_allclose(updates["backbone"]["kernel"],
                             -1e-3 * float(f(3)) * np.sign([0.5, -2.0]), rtol=1e-4)
  assert optim.learning_rates(cfg, 2) == {"lr_backbone": 0.0, "lr_head": pytest.approx(1e-2 * 0.5)}
  assert optim.learning_rates(cfg, 3)["lr_backbone"] == pytest.approx(1e-3 * 0.75)


def test_frozen_optimizer_state_keeps_its_shapes():
  cfg = train_cfg(learning_rate=1e-2, backbone_lr_mult=0.1, weight_decay=0.05, warmup_steps=0,
                  cosine_steps=10, freeze_backbone_steps=2)
  tx = optim.make_optimizer(cfg)
  params = {"backbone": {"kernel": jnp.ones((3, 2))}, "head": {"bias": jnp.ones(1)}}
  state = tx.init(params)
  shapes = lambda s: [x.shape for x in jax.tree_util.tree_leaves(s)]
  before = shapes(state)
  for _ in range(3):
    _, state = tx.update(params, state, params)
    assert shapes(state) == before


def simple_vqa_train_cfg(**overrides):
  """SimpleVQA's optimizer fields: Adam + coupled L2, StepLR."""
  fields = dict(learning_rate=1e-5, backbone_lr_mult=1.0, weight_decay=1e-7, warmup_steps=0,
                cosine_steps=1, optimizer="adam_l2", schedule="step", lr_step_every=4,
                lr_step_gamma=0.95)
  return train_cfg(**(fields | overrides))


@pytest.mark.parametrize("step,lr", [(0, 1e-5), (3, 1e-5), (4, 9.5e-6), (7, 9.5e-6),
                                     (8, 9.025e-6), (13, 1e-5 * 0.95**3)])
def test_step_schedule_learning_rates(step, lr):
  # StepLR(step_size=2 epochs, gamma=0.95) with 2 steps per epoch: x0.95 every 4 steps.
  rates = optim.learning_rates(simple_vqa_train_cfg(backbone_lr_mult=0.5), step)
  np.testing.assert_allclose(rates["lr_head"], lr, rtol=1e-6)
  np.testing.assert_allclose(rates["lr_backbone"], 0.5 * lr, rtol=1e-6)


def test_adam_with_coupled_l2_by_hand():
  # PyTorch Adam(weight_decay=wd): g' = g + wd p, m = b1 m + (1-b1) g', v = b2 v + (1-b2) g'^2,
  # p -= lr_k * m / (1 - b1^k) / (sqrt(v / (1 - b2^k)) + eps). lr halves after the first step.
  cfg = simple_vqa_train_cfg(learning_rate=0.01, weight_decay=0.1, lr_step_every=1,
                             lr_step_gamma=0.5)
  tx = optim.make_optimizer(cfg)
  params = {"backbone": {"kernel": jnp.array(2.0)}, "head": {"bias": jnp.array(2.0)}}
  grads = {"backbone": {"kernel": jnp.array(-0.1)}, "head": {"bias": jnp.array(-0.1)}}
  state = tx.init(params)
  p, m, v = 2.0, 0.0, 0.0
  for k, lr in ((1, 0.01), (2, 0.005)):
    g = -0.1 + 0.1 * p
    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    p -= lr * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
    updates, state = tx.update(grads, state, params)
    params = jax.tree_util.tree_map(lambda a, u: a + u, params, updates)
    np.testing.assert_allclose(params["backbone"]["kernel"], p, rtol=1e-6)
    np.testing.assert_allclose(params["head"]["bias"], p, rtol=1e-6)
  # The L2 term flips the first step's sign: plain Adam would move p up (gradient -0.1).
  # Step 1: g' = 0.1, p = 2 - 0.01; step 2: g' = 0.099, m = 0.0189, v = 1.9791e-5, p = 1.985001.
  np.testing.assert_allclose(p, 2.0 - 0.01 - 0.005 * (0.0189 / 0.19)
                             / np.sqrt(1.9791e-5 / (1 - 0.999**2)), rtol=1e-5)


def test_unknown_optimizer_and_schedule_are_rejected():
  with pytest.raises(ValueError, match="train.optimizer"):
    optim.make_optimizer(simple_vqa_train_cfg(optimizer="sgd"))
  with pytest.raises(ValueError, match="train.schedule"):
    optim.learning_rates(simple_vqa_train_cfg(schedule="linear"), 0)
  with pytest.raises(ValueError, match="lr_step_every"):
    optim.make_optimizer(simple_vqa_train_cfg(lr_step_every=0))
