"""The reference schedule (paper §10 item 10), the two learning-rate groups and decoupled decay."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vqa_jax import optim


@pytest.mark.parametrize("step,value", [(0, 0.0), (1, 2.28e-4), (4385, 1.0), (26310, 0.629410),
                                        (52620, 0.017037)])
def test_reference_schedule_lsvq(step, value):
  f = optim.reference_schedule(warmup_steps=4385, cosine_steps=52620)
  np.testing.assert_allclose(float(f(step)), value, rtol=2e-3, atol=1e-6)


def test_two_groups_and_decay_on_every_leaf():
  cfg = ml_collections.ConfigDict(dict(learning_rate=1e-2, backbone_lr_mult=0.1, weight_decay=0.5,
                                       warmup_steps=0, cosine_steps=1000))
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
