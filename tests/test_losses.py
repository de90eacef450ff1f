"""Losses against the worked values of paper §10 items 7–8."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vqa_jax.families import losses

# (pred, label, L_plcc, L_rank, L) from paper §10 item 8.
WORKED = [
    ([1, 2, 3, 4], [1, 2, 3, 4], 0.0, 0.0, 0.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], 0.5, 0.416667, 0.625),
    ([1, 2, 3, 4], [1, 3, 2, 4], 0.095, 0.083333, 0.12),
    ([0.1, 0.4, 0.35, 0.8], [2, 3, 4, 5], 0.042377, 0.007937, 0.044758),
]


@pytest.mark.parametrize("pred,label,l_plcc,l_rank,total", WORKED)
def test_worked_examples(pred, label, l_plcc, l_rank, total):
  p, y = jnp.array(pred, jnp.float32), jnp.array(label, jnp.float32)
  np.testing.assert_allclose(losses.plcc_loss(p, y), l_plcc, atol=2e-6)
  np.testing.assert_allclose(losses.rank_loss(p, y), l_rank, atol=2e-6)
  np.testing.assert_allclose(losses.vqa_loss(p, y), total, atol=2e-6)


def test_plcc_loss_closed_form():
  rng = np.random.default_rng(0)
  p, y = rng.normal(size=16), rng.normal(size=16)
  rho = np.corrcoef(p, y)[0, 1]
  np.testing.assert_allclose(losses.plcc_loss(jnp.array(p), jnp.array(y)),
                             (1 - rho) / 4 + (1 - rho**2) / 8, atol=1e-5)


def test_rank_normaliser_is_differentiated():
  # d/dp of sum(h)/(B(B-1))/(1+max h) includes the max term: compare with a detached normaliser.
  p, y = jnp.array([3.0, 1.0, 2.0]), jnp.array([1.0, 2.0, 3.0])

  def detached(p):
    h = jax.nn.relu((p[:, None] - p[None, :]) * jnp.sign(y[None, :] - y[:, None]))
    return jnp.sum(h) / 6 / (1 + jax.lax.stop_gradient(jnp.max(h)))

  g = jax.grad(losses.rank_loss)(p, y)
  g_detached = jax.grad(detached)(p)
  assert not np.allclose(g, g_detached)
  # Finite differences confirm the full gradient.
  eps = 1e-3
  fd = [(losses.rank_loss(p.at[i].add(eps), y) - losses.rank_loss(p.at[i].add(-eps), y)) / (2 * eps)
        for i in range(3)]
  np.testing.assert_allclose(g, fd, atol=1e-3)


def test_smooth_l1_loss_by_hand():
  """SmoothL1 (beta 1): differences -0.5, 2, 0 give 0.125, 1.5, 0 -> mean 1.625 / 3."""
  pred = jnp.asarray([0.0, 2.0, 0.5])
  label = jnp.asarray([0.5, 0.0, 0.5])
  np.testing.assert_allclose(losses.smooth_l1_loss(pred, label), 1.625 / 3, rtol=1e-6)
