"""perturb.every_k: the perturbation recomputed on every k-th call and reused in between (hand-computed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import np_awp_delta
from tests.helpers import np_awp_project
from vqa_jax import perturb

GAMMA = 0.1
CURVATURE = np.array([1.0, 3.0, 0.5, 2.0], np.float32)


def loss(params, rng):
  """0.5 * sum(c * w^2): gradient c * w."""
  del rng
  return 0.5 * jnp.sum(CURVATURE * params["dense"]["kernel"] ** 2)


def awp_delta(w: np.ndarray, g: np.ndarray) -> np.ndarray:
  """The reference's one AWP step, then its ball and box, in numpy (tests/helpers.py)."""
  return np_awp_delta(w, g, GAMMA)


def project(w: np.ndarray, delta: np.ndarray) -> np.ndarray:
  """The feasible set of w: the ball ‖δ‖ ≤ γ(‖w‖ + e), then the box |δ| ≤ γ|w|."""
  return np_awp_project(w, delta, GAMMA)


def test_every_other_call_reuses_the_projected_last_perturbation():
  w1 = np.array([1.0, -2.0, 0.5, 4.0], np.float32)
  w2 = np.array([0.2, -2.5, 3.0, 1.0], np.float32)  # the weights have moved between the calls
  periodic = perturb.every_k(loss, "awp", radius=GAMMA, k=2)
  state = periodic.init({"dense": {"kernel": w1}})
  assert int(state.count) == 0 and not np.any(state.delta["dense"]["kernel"])
  apply = jax.jit(periodic.apply)
  key = jax.random.key(0)

  value1, grads1, info1, state = apply({"dense": {"kernel": w1}}, state, rng=key)
  delta1 = awp_delta(w1, CURVATURE * w1)
  np.testing.assert_allclose(value1, 0.5 * np.sum(CURVATURE * w1 ** 2), rtol=1e-6)
  np.testing.assert_allclose(grads1["dense"]["kernel"], CURVATURE * (w1 + delta1), rtol=1e-5)
  np.testing.assert_allclose(info1["clean_grads"]["dense"]["kernel"], CURVATURE * w1, rtol=1e-6)
  assert float(info1["recomputed"]) == 1.0 and int(state.count) == 1

  value2, grads2, info2, state = apply({"dense": {"kernel": w2}}, state, rng=key)
  delta2 = project(w2, delta1)  # no clean pass: the last δ mapped into w2's feasible set
  assert not np.allclose(delta2, delta1)  # the projection did something here
  np.testing.assert_allclose(grads2["dense"]["kernel"], CURVATURE * (w2 + delta2), rtol=1e-5)
  np.testing.assert_allclose(value2, 0.5 * np.sum(CURVATURE * (w2 + delta2) ** 2), rtol=1e-5)
  np.testing.assert_array_equal(info2["clean_grads"]["dense"]["kernel"], np.zeros(4))
  assert float(info2["recomputed"]) == 0.0 and int(state.count) == 2

  _, grads3, info3, _ = apply({"dense": {"kernel": w2}}, state, rng=key)  # count 2: fresh again
  np.testing.assert_allclose(grads3["dense"]["kernel"],
                             CURVATURE * (w2 + awp_delta(w2, CURVATURE * w2)), rtol=1e-5)
  assert float(info3["recomputed"]) == 1.0


def test_k_one_is_value_and_grad():
  """k=1 recomputes on every call: the hand-computed AWP gradient each time, and bit for bit
  what perturb.value_and_grad gives."""
  w = np.array([1.0, -2.0, 0.5, 4.0], np.float32)
  params = {"dense": {"kernel": w}}
  key = jax.random.key(3)
  periodic = perturb.every_k(loss, "awp", radius=GAMMA, k=1)
  state = periodic.init(params)
  for _ in range(2):  # the count does not matter with k=1
    value, grads, info, state = periodic.apply(params, state, rng=key)
    np.testing.assert_allclose(value, 0.5 * np.sum(CURVATURE * w ** 2), rtol=1e-6)
    np.testing.assert_allclose(grads["dense"]["kernel"],
                               CURVATURE * (w + awp_delta(w, CURVATURE * w)), rtol=1e-5)
    assert float(info["recomputed"]) == 1.0
  want_value, want_grads, _ = perturb.value_and_grad(loss, "awp", radius=GAMMA)(params, rng=key)
  np.testing.assert_array_equal(value, want_value)
  np.testing.assert_array_equal(grads["dense"]["kernel"], want_grads["dense"]["kernel"])


def test_k_below_one_is_refused():
  with pytest.raises(ValueError, match="k >= 1"):
    perturb.every_k(loss, "awp", radius=GAMMA, k=0)
