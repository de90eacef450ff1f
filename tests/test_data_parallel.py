"""Data parallel: the jitted perturbed step on 1 and on 8 simulated CPU devices gives the same run.

The batch is split on the `data` mesh axis and the params are replicated; the losses (PLCC and rank
compare videos across the batch) and the perturbation see the global batch, so the device count only
changes float rounding. SGD keeps that rounding visible as rounding: Adam's g/(|g| + eps) would blow
it up for the few gradient entries that are ~eps.
"""


import flax

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import linear_loss
from tests.helpers import linear_problem
from tests.helpers import load_config
from tests.helpers import smoke_batch
from vqa_jax.families import losses
from vqa_jax.training import optim
from vqa_jax.runtime import sharding
from vqa_jax.training import train_step
from vqa_jax.models import fast_vqa as model_lib

pytestmark = pytest.mark.usefixtures("fast_compile")


def run_on_mesh(num_devices, step_fn, state, batches):
  """(final state, last metrics, mesh, a leaf of the input state) after one step per batch."""
  mesh = sharding.make_mesh(num_devices)
  state = jax.device_put(jax.device_get(state), sharding.replicated(mesh))  # a copy: it is donated
  step = train_step.jit_sharded(step_fn, mesh)
  first_leaf = jax.tree_util.tree_leaves(state.params)[0]
  for batch in batches:
    state, metrics = step(state, sharding.shard_batch(batch, mesh), jax.random.key(1))
  return state, metrics, mesh, first_leaf


def assert_same_run(one, eight, tol):
  """The two trees have one structure and every leaf agrees to `tol`."""
  chex.assert_trees_all_close(one, eight, rtol=tol, atol=tol)


def assert_replicated_and_donated(state, mesh, donated):
  """All leaves replicated on the 8-device mesh; the donated input leaf is gone."""
  for leaf in jax.tree_util.tree_leaves(state):
    assert leaf.sharding.is_equivalent_to(sharding.replicated(mesh), leaf.ndim)
    assert len(leaf.sharding.device_set) == 8
  assert donated.is_deleted()


def test_awp_on_the_smoke_model_one_and_eight_devices_give_the_same_params():
  assert jax.device_count() >= 8, "tests/conftest.py should simulate 8 CPU devices"
  config = load_config("smoke")
  model = model_lib.build_model(config.model)
  tx = optax.sgd(0.3, momentum=0.9)
  params = model.init({"params": jax.random.key(0)}, jnp.zeros((1, 4, 32, 32, 3), jnp.uint8),
                      train=False)["params"]
  cfg = train_step.PerturbConfig("awp", 1e-2)
  step_fn = train_step.make_train_step(losses.make_loss_fn(model, 0.3), tx, cfg, 0.9)
  batches = [smoke_batch(i) for i in range(3)]
  runs = {n: run_on_mesh(n, step_fn, train_step.create_train_state(params, tx), batches)
          for n in (1, 8)}
  (one, metrics_one, _, _), (eight, metrics_eight, mesh, donated) = runs[1], runs[8]
  assert_same_run(one.params, eight.params, 1e-5)
  for name in ("loss", "perturbed_loss", "perturbation_norm"):
    np.testing.assert_allclose(metrics_one[name], metrics_eight[name], rtol=1e-5)
  assert_replicated_and_donated(eight, mesh, donated)


def test_population_with_every_k_one_and_eight_devices_give_the_same_params():
  params, batch, _ = linear_problem()
  tx = optax.sgd(0.3, momentum=0.9)
  cfgs = [train_step.PerturbConfig("awp", r, every_k=2) for r in (0.0, 0.05, 0.02)]
  step_fn = train_step.make_population_step(linear_loss, tx, cfgs, 0.9)
  states = train_step.stack_states([train_step.create_train_state(params, tx, c) for c in cfgs])
  batches = [jax.device_get(batch)] * 3
  (one, _, _, _), (eight, _, mesh, donated) = (run_on_mesh(n, step_fn, states, batches)
                                               for n in (1, 8))
  assert_same_run(one, eight, 1e-6)
  assert_replicated_and_donated(eight, mesh, donated)


def test_reference_adamw_one_and_eight_devices_agree_except_the_shift_invariant_bias():
  """With the reference AdamW every leaf agrees to 1e-5, except `head/fc_last/bias`.

  That bias shifts every prediction equally, and the PLCC + rank loss is shift-invariant, so its
  gradient is 0 in exact arithmetic; Adam normalises the rounding noise into steps of about ±lr,
  different for each device count (the reference has the same behaviour). It stays within
  steps x lr of its start on both meshes.
  """
  config = load_config("smoke")
  model = model_lib.build_model(config.model)
  tx = optim.make_optimizer(config.train)
  params = model.init({"params": jax.random.key(0)}, jnp.zeros((1, 4, 32, 32, 3), jnp.uint8),
                      train=False)["params"]
  step_fn = train_step.make_train_step(losses.make_loss_fn(model, 0.3), tx,
                                       train_step.PerturbConfig("awp", 1e-2), 0.9)
  batches = [smoke_batch(i) for i in range(3)]
  one, eight = (run_on_mesh(n, step_fn, train_step.create_train_state(params, tx), batches)[0]
                for n in (1, 8))
  bias_path = ("head", "fc_last", "bias")
  flat_one = flax.traverse_util.flatten_dict(jax.device_get(one.params))
  flat_eight = flax.traverse_util.flatten_dict(jax.device_get(eight.params))
  assert flat_one.keys() == flat_eight.keys()
  for path, value in flat_one.items():
    if path != bias_path:
      np.testing.assert_allclose(value, flat_eight[path], rtol=1e-5, atol=1e-5, err_msg=str(path))
  start = flax.traverse_util.flatten_dict(params)[bias_path]
  for flat in (flat_one, flat_eight):
    assert np.all(np.abs(flat[bias_path] - start) <= 3 * config.train.learning_rate + 1e-7)
