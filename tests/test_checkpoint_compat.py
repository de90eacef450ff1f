"""Checkpoints of older TrainState layouts (no model_state; perturb_state) restore or are refused by name."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vqa_jax.training import checkpointing
from vqa_jax.training import train_step


@flax.struct.dataclass
class TrainStateBeforeModelState:
  """TrainState's layout before the model_state field (checkpoints of earlier versions)."""

  step: jax.Array
  params: dict
  opt_state: dict
  ema_params: dict
  perturb_state: dict = None


def legacy_checkpoint(tmp_path):
  """A manager holding step 7 of a state in the old layout, and that state's params."""
  tx = optax.adam(1e-3)
  params = {"w": jnp.arange(3.0)}
  old = TrainStateBeforeModelState(step=jnp.asarray(7, jnp.int32), params=params,
                                   opt_state=tx.init(params), ema_params={"w": params["w"] + 1})
  manager = checkpointing.checkpoint_manager(str(tmp_path), async_save=False)
  checkpointing.save(manager, 7, old, force=True)
  return manager, tx, params


def test_old_checkpoint_restores_into_the_new_state_with_model_state_none(tmp_path):
  _, tx, params = legacy_checkpoint(tmp_path)
  manager = checkpointing.checkpoint_manager(str(tmp_path))  # a resumed run's fresh manager
  target = train_step.create_train_state(jax.tree_util.tree_map(jnp.zeros_like, params), tx)
  assert checkpointing.fields_absent_on_disk(manager, 7, target) == {"model_state"}
  restored = checkpointing.restore_latest(manager, target)
  assert int(restored.step) == 7 and restored.model_state is None
  np.testing.assert_array_equal(restored.params["w"], [0.0, 1.0, 2.0])
  np.testing.assert_array_equal(restored.ema_params["w"], [1.0, 2.0, 3.0])


def test_old_checkpoint_cannot_fill_a_model_state_the_run_needs(tmp_path):
  manager, tx, params = legacy_checkpoint(tmp_path)
  target = train_step.create_train_state(params, tx,
                                         model_state={"batch_stats": {"mean": jnp.zeros(3)}})
  with pytest.raises(ValueError, match=r"has no \['model_state'\]"):
    checkpointing.restore_latest(manager, target)


def test_old_every_k_checkpoint_is_refused_naming_perturb_state(tmp_path):
  # Before every_k's state moved into opt_state, TrainState.perturb_state held the last delta.
  tx = optax.adam(1e-3)
  params = {"w": jnp.arange(3.0)}
  old = TrainStateBeforeModelState(step=jnp.asarray(4, jnp.int32), params=params,
                                   opt_state=tx.init(params), ema_params=params,
                                   perturb_state={"w": jnp.ones(3)})
  manager = checkpointing.checkpoint_manager(str(tmp_path), async_save=False)
  checkpointing.save(manager, 4, old, force=True)
  target = train_step.create_train_state(params, tx)
  with pytest.raises(checkpointing.IncompatibleCheckpoint, match=r"holds \['perturb_state'\]"):
    checkpointing.restore(checkpointing.checkpoint_manager(str(tmp_path)), 4, target)
