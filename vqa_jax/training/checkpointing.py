"""Orbax checkpoints of the train state in `<workdir>/checkpoints`, with auto-resume.

Layout: `<workdir>/checkpoints/<step>/default/` holds a StandardSave of the TrainState. The best
checkpoint by validation score (trainer) lives in `<workdir>/best/checkpoints/<step>/`, so that
`<workdir>/best` has the layout of a workdir itself and loads wherever a workdir does.

Restoring falls back from an unreadable newest checkpoint (truncated or corrupt files) to the newest
readable one, naming each unreadable step; `restore_latest(..., set_aside=True)` (the trainer) moves
those into `<workdir>/checkpoints_unreadable/` so that the resumed run writes their steps afresh.
`finishing(*managers)` is the one exit path of a run's managers: whatever ends the block (return,
exception, signal), in-flight asynchronous saves complete and the managers close, so the last
started save is restorable and no background writer dies with the interpreter. A failed write
(disk full) ends the run with its error printed last: orbax's follow-on noise is dropped
(`orbax_noise`).
"""

import contextlib
import dataclasses
import os
import shutil
import time
from typing import Any, Callable

from absl import logging
from etils import epath
import jax
import orbax.checkpoint as ocp

from vqa_jax.training import orbax_noise

PyTree = Any
BEST_SUBDIR = "best"
UNREADABLE_SUBDIR = "checkpoints_unreadable"
ITEM_NAME = "default"  # the CheckpointManager's single item: <dir>/<step>/default


class ConfiguredManager(ocp.CheckpointManager):
  """A CheckpointManager whose steps saved by `save` carry `step_metadata` (the run's config) as
  orbax custom metadata (in each step's _CHECKPOINT_METADATA; `manager.metadata(step)`)."""

  def __init__(self, *args, step_metadata: dict | None = None, **kwargs):
    super().__init__(*args, **kwargs)
    self.step_metadata = step_metadata


def checkpoint_manager(workdir: str, max_to_keep: int = 2, save_interval_steps: int = 1,
                       async_save: bool = True,
                       best_fn: Callable[[dict], float] | None = None,
                       metadata: dict | None = None) -> ocp.CheckpointManager:
  """A CheckpointManager over `<workdir>/checkpoints` keeping `max_to_keep` steps.

  Without `best_fn` it keeps the newest steps; with it, the steps whose saved metrics score highest.
  `metadata` (the run's config) goes into every step's orbax custom metadata.
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                         save_interval_steps=save_interval_steps, create=True,
                                         enable_async_checkpointing=async_save, best_fn=best_fn,
                                         best_mode="max")
  return ConfiguredManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                           options=options, step_metadata=metadata)


def best_manager(workdir: str, async_save: bool = True,
                 metadata: dict | None = None) -> ocp.CheckpointManager:
  """The manager of the single best checkpoint (`metrics['score']`) in `<workdir>/best`."""
  return checkpoint_manager(os.path.join(workdir, BEST_SUBDIR), max_to_keep=1,
                            async_save=async_save, best_fn=lambda m: m["score"],
                            metadata=metadata)


def save(manager: ocp.CheckpointManager, step: int, state: PyTree, force: bool = False,
         metrics: dict | None = None) -> bool:
  """Saves `state` at `step` (subject to the save interval unless `force`); True if it saved.

  A step the manager already holds (a resumed run repeating it) is not saved again.
  """
  if step in manager.all_steps():
    return False
  return manager.save(step, args=ocp.args.StandardSave(state), force=force, metrics=metrics,
                      custom_metadata=getattr(manager, "step_metadata", None))


class IncompatibleCheckpoint(ValueError):
  """A checkpoint lacks a state field the run needs (another model): no fallback can help."""


class NoReadableCheckpoint(RuntimeError):
  """Every checkpoint of a manager failed to restore; the message names each one and its error."""


def error_summary(error: BaseException) -> str:
  """'Type: first line' of the innermost cause of `error` (tensorstore wraps the real one)."""
  while error.__cause__ is not None:
    error = error.__cause__
  lines = str(error).splitlines()
  return f"{type(error).__name__}: {lines[0] if lines else ''}"


def restore_newest_readable(manager: ocp.CheckpointManager, target: PyTree,
                            ) -> tuple[int | None, PyTree | None, list[tuple[int, str]]]:
  """(step, state, unreadable) of the newest checkpoint that restores like `target`.

  Newer checkpoints that fail to restore are skipped with a warning naming them; `unreadable` lists
  them as (step, error). An IncompatibleCheckpoint (another model's) is raised at once. Without checkpoints: (None, None, []). Raises NoReadableCheckpoint when
  none restores.
  """
  unreadable = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state = restore(manager, step, target)
    except IncompatibleCheckpoint:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any failure: try an older step)
      error = error_summary(e)
      logging.warning("checkpoint %s/%d is unreadable (%s); trying an older one",
                      manager.directory, step, error)
      unreadable.append((step, error))
      continue
    if unreadable:
      logging.warning("restored %s/%d, the newest readable checkpoint", manager.directory, step)
    return step, state, unreadable
  if unreadable:
    listed = "\n  ".join(f"{manager.directory}/{s}: {e}" for s, e in unreadable)
    raise NoReadableCheckpoint(f"no checkpoint in {manager.directory} restores:\n  {listed}")
  return None, None, []


def set_aside(manager: ocp.CheckpointManager, steps: list[int]) -> None:
  """Moves these step folders to `<dir>/../checkpoints_unreadable/<step>-<time>` (process 0)."""
  if jax.process_index() == 0:
    directory = epath.Path(manager.directory)
    aside = directory.parent / UNREADABLE_SUBDIR
    aside.mkdir(parents=True, exist_ok=True)
    for step in steps:
      target = aside / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
      shutil.move(os.fspath(directory / str(step)), os.fspath(target))
      logging.warning("moved unreadable checkpoint %s/%d to %s", directory, step, target)
  ocp.multihost.sync_global_processes("vqa_jax_set_aside_unreadable")
  manager.reload()


def restore_latest(manager: ocp.CheckpointManager, target: PyTree,
                   set_aside_unreadable: bool = False) -> PyTree | None:
  """The newest readable saved state laid out like `target` (same shardings), or None if none.

  Unreadable newer checkpoints are skipped (see `restore_newest_readable`); with
  `set_aside_unreadable` they are moved out of the manager's folder (see `set_aside`).
  """
  _, state, unreadable = restore_newest_readable(manager, target)
  if unreadable and set_aside_unreadable:
    set_aside(manager, [step for step, _ in unreadable])
  return state


@contextlib.contextmanager
def finishing(*managers: ocp.CheckpointManager | None):
  """On leaving the block, however, waits for each manager's in-flight saves and closes it.

  If the block raised, a failure to finish is logged and the block's exception propagates; otherwise
  the first such failure is raised. Either way the newest finished step of each manager is logged.
  """
  managers = [m for m in managers if m is not None]
  orbax_noise.install()  # a failed write's follow-on noise dropped: the run's error prints last
  try:
    yield
  except BaseException as e:
    _finish(managers, raise_first=False)
    _log_stopped(managers, e)
    raise
  try:
    _finish(managers, raise_first=True)
  except BaseException as e:  # a save of the finished run failed (a full disk)
    _log_stopped(managers, e)
    raise


def _log_stopped(managers: list[ocp.CheckpointManager], error: BaseException) -> None:
  """Logs what stopped the run and each manager's newest complete checkpoint."""
  orbax_noise.run_failed()  # the error propagates next: nothing of orbax's after it
  for manager in managers:
    logging.warning("stopped by %s; newest checkpoint in %s: step %s", type(error).__name__,
                    manager.directory, manager.latest_step())


def _finish(managers: list[ocp.CheckpointManager], raise_first: bool) -> None:
  """wait_until_finished + close for every manager, even after one fails."""
  errors = []
  for manager in managers:
    try:
      manager.wait_until_finished()
      manager.close()
    except Exception as e:  # pylint: disable=broad-except  (finish the others first)
      logging.error("finishing checkpoints in %s failed: %s", manager.directory, e)
      errors.append(e)
  if errors and raise_first:
    raise errors[0]


def _saved_tree(manager: ocp.CheckpointManager, step: int):
  """The metadata tree of the checkpoint at `step` (a dict of the saved fields)."""
  metadata = manager.item_metadata(step)
  if metadata is None:  # a manager that has not saved or restored yet knows no item handler
    item_dir = epath.Path(manager.directory) / str(step) / ITEM_NAME
    metadata = ocp.PyTreeCheckpointHandler().metadata(item_dir)
  return getattr(metadata, "tree", metadata)


def fields_absent_on_disk(manager: ocp.CheckpointManager, step: int, target: PyTree) -> set[str]:
  """Fields of the dataclass `target` that the checkpoint at `step` does not hold (older layouts)."""
  if not dataclasses.is_dataclass(target):
    return set()
  saved = _saved_tree(manager, step)
  return {f.name for f in dataclasses.fields(target) if f.name not in saved}


def _is_none_on_disk(entry) -> bool:
  """Whether a saved metadata entry stands for a None value."""
  return entry is None or getattr(entry, "value_type", None) == "None"


def restore(manager: ocp.CheckpointManager, step: int, target: PyTree) -> PyTree:
  """The state saved at `step`, laid out like `target`.

  A checkpoint written before a TrainState field existed (e.g. `model_state`, added for BatchNorm
  models) restores when the target's value of that field is None: it keeps None. A missing field
  the target does fill is an error naming it. A saved field the target no longer has (e.g. the
  old `perturb_state`, now in opt_state) is dropped when it was saved as None, else an error.
  """
  abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
  absent = fields_absent_on_disk(manager, step, target)
  if not dataclasses.is_dataclass(target):
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))
  saved = _saved_tree(manager, step)
  names = {f.name for f in dataclasses.fields(target)}
  dropped = sorted(name for name in saved if name not in names)
  if not absent and not dropped:
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))
  needed = sorted(name for name in absent if getattr(target, name) is not None)
  kept = sorted(name for name in dropped if not _is_none_on_disk(saved[name]))
  if needed or kept:
    raise IncompatibleCheckpoint(
        f"checkpoint {manager.directory}/{step} " + "; ".join(
            [f"has no {needed}, which this run's state needs" for _ in needed[:1]]
            + [f"holds {kept}, which this version's state has no place for" for _ in kept[:1]])
        + " (a checkpoint of another model or an older version)")
  parts = {f.name: getattr(abstract, f.name) for f in dataclasses.fields(abstract)
           if f.name not in absent}
  restored = manager.restore(step, args=ocp.args.StandardRestore(
      {**parts, **{name: None for name in dropped}}))
  return target.replace(**{name: restored[name] for name in parts})
