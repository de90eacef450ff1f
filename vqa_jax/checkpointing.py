"""Orbax checkpoints of the train state in `<workdir>/checkpoints`, with auto-resume.

Layout: `<workdir>/checkpoints/<step>/default/` holds a StandardSave of the TrainState. The best
checkpoint by validation score (trainer) lives in `<workdir>/best/checkpoints/<step>/`, so that
`<workdir>/best` has the layout of a workdir itself and loads wherever a workdir does.
"""

import dataclasses
import os
from typing import Any, Callable

from etils import epath
import jax
import orbax.checkpoint as ocp

PyTree = Any
BEST_SUBDIR = "best"
ITEM_NAME = "default"  # the CheckpointManager's single item: <dir>/<step>/default


def checkpoint_manager(workdir: str, max_to_keep: int = 2, save_interval_steps: int = 1,
                       async_save: bool = True,
                       best_fn: Callable[[dict], float] | None = None) -> ocp.CheckpointManager:
  """A CheckpointManager over `<workdir>/checkpoints` keeping `max_to_keep` steps.

  Without `best_fn` it keeps the newest steps; with it, the steps whose saved metrics score highest.
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                         save_interval_steps=save_interval_steps, create=True,
                                         enable_async_checkpointing=async_save, best_fn=best_fn,
                                         best_mode="max")
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                               options=options)


def best_manager(workdir: str, async_save: bool = True) -> ocp.CheckpointManager:
  """The manager of the single best checkpoint (`metrics['score']`) in `<workdir>/best`."""
  return checkpoint_manager(os.path.join(workdir, BEST_SUBDIR), max_to_keep=1,
                            async_save=async_save, best_fn=lambda m: m["score"])


def save(manager: ocp.CheckpointManager, step: int, state: PyTree, force: bool = False,
         metrics: dict | None = None) -> bool:
  """Saves `state` at `step` (subject to the save interval unless `force`); True if it saved.

  A step the manager already holds (a resumed run repeating it) is not saved again.
  """
  if step in manager.all_steps():
    return False
  return manager.save(step, args=ocp.args.StandardSave(state), force=force, metrics=metrics)


def restore_latest(manager: ocp.CheckpointManager, target: PyTree) -> PyTree | None:
  """The newest saved state laid out like `target` (arrays with the same shardings), or None."""
  step = manager.latest_step()
  if step is None:
    return None
  return restore(manager, step, target)


def fields_absent_on_disk(manager: ocp.CheckpointManager, step: int, target: PyTree) -> set[str]:
  """Fields of the dataclass `target` that the checkpoint at `step` does not hold (older layouts)."""
  if not dataclasses.is_dataclass(target):
    return set()
  metadata = manager.item_metadata(step)
  if metadata is None:  # a manager that has not saved or restored yet knows no item handler
    item_dir = epath.Path(manager.directory) / str(step) / ITEM_NAME
    metadata = ocp.PyTreeCheckpointHandler().metadata(item_dir)
  saved = getattr(metadata, "tree", metadata)
  return {f.name for f in dataclasses.fields(target) if f.name not in saved}


def restore(manager: ocp.CheckpointManager, step: int, target: PyTree) -> PyTree:
  """The state saved at `step`, laid out like `target`.

  A checkpoint written before a TrainState field existed (e.g. `model_state`, added for BatchNorm
  models) restores when the target's value of that field is None: it keeps None. A missing field
  the target does fill is an error naming it.
  """
  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
  absent = fields_absent_on_disk(manager, step, target)
  if not absent:
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))
  needed = sorted(name for name in absent if getattr(target, name) is not None)
  if needed:
    raise ValueError(f"checkpoint {manager.directory}/{step} has no {needed}, which this run's "
                     "state needs (a checkpoint of another model or an older version)")
  parts = {f.name: getattr(abstract, f.name) for f in dataclasses.fields(abstract)
           if f.name not in absent}
  return target.replace(**manager.restore(step, args=ocp.args.StandardRestore(parts)))
