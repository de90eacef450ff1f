"""Orbax checkpoints of the train state in `<workdir>/checkpoints`, with auto-resume."""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

PyTree = Any


def checkpoint_manager(workdir: str, max_to_keep: int = 2,
                       save_interval_steps: int = 1) -> ocp.CheckpointManager:
  """A CheckpointManager over `<workdir>/checkpoints` keeping the newest `max_to_keep` steps."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                         save_interval_steps=save_interval_steps, create=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                               options=options)


def save(manager: ocp.CheckpointManager, step: int, state: PyTree, force: bool = False) -> bool:
  """Saves `state` at `step` (subject to the save interval unless `force`); True if it saved."""
  return manager.save(step, args=ocp.args.StandardSave(state), force=force)


def restore_latest(manager: ocp.CheckpointManager, target: PyTree) -> PyTree | None:
  """The newest saved state laid out like `target` (arrays with the same shardings), or None."""
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))
