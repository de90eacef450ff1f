"""Model variables from any checkpoint this project writes: converted weights or a training run.

`load_params(path)` (the params) and `load_variables(path)` (every Flax collection: 'params', and
'batch_stats' where the model has BatchNorm) accept

* a `vqa_jax.convert_weights` output directory (an orbax tree of collections `{'params'[,
  'batch_stats']}`);
* a trainer workdir, its `checkpoints/` folder, one step folder `checkpoints/<step>/`, or the
  orbax item inside a step folder (the saved `train_step.TrainState`). The latest finalized step
  is used, and only its EMA params (`use_ema=True`, the reference's `_s` model, paper §7.4) or its
  raw params (`use_ema=False`) are read: the optimizer state is never restored, so its structure
  need not be known. The other collections come from the state's `model_state` ({'batch_stats':
  ...}; absent or None for models without any, and in checkpoints older than that field). The
  trainer's best checkpoint, `<workdir>/best`, has a workdir's layout. Converted weights hold one
  set of params, so `use_ema` does not apply to them.

With `like` (a params pytree, or for `load_variables` a dict of collections, of arrays or
`jax.ShapeDtypeStruct`s), the saved key set and every shape are checked against it before anything
is read, and the arrays are restored with `like`'s dtypes and shardings (e.g. replicated on the
trainer's mesh). Without it, arrays land on the default device with their saved dtypes. Any
problem is a `CheckpointError` (a `ValueError`) that names the path.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from etils import epath
import flax
import jax
import orbax.checkpoint as ocp

PyTree = Any

CONVERTED = "converted weights"
TRAINER = "trainer checkpoint"
PYTREE_METADATA = "_METADATA"  # The file that marks an orbax pytree item directory.
CHECKPOINTS_DIR = "checkpoints"  # checkpointing.checkpoint_manager's folder inside a workdir.
DEFAULT_ITEM = "default"  # The item name CheckpointManager gives a single unnamed save.
MODEL_STATE = "model_state"  # train_step.TrainState's field of the non-params collections.
STATE_COLLECTIONS = ("batch_stats",)  # Collections converted weights may hold besides 'params'.
MAX_LISTED = 20  # Mismatched keys listed per category in an error message.


class CheckpointError(ValueError):
  """A path that is not a usable params checkpoint, or one that does not fit the model."""


@dataclasses.dataclass(frozen=True)
class Location:
  """Where the params of a checkpoint are: the orbax item directory, its kind and its step."""

  item_dir: str
  kind: str  # CONVERTED or TRAINER.
  step: int | None  # Training step of a trainer checkpoint; None for converted weights.
  keys: tuple[str, ...]  # Top-level keys of the saved tree.

  def params_key(self, use_ema: bool) -> str:
    """The top-level key holding the params to restore ('params' or 'ema_params')."""
    if self.kind == TRAINER and use_ema:
      if "ema_params" not in self.keys:
        raise CheckpointError(f"{self.item_dir}: no 'ema_params' in the saved state (keys "
                              f"{list(self.keys)}); use the raw params (use_ema=False)")
      return "ema_params"
    return "params"


def _is_item(path: str) -> bool:
  """Whether `path` is an orbax pytree item directory."""
  return os.path.isfile(os.path.join(path, PYTREE_METADATA))


def _tree_metadata(item_dir: str) -> dict:
  """The saved tree of an item directory: nested dicts/lists of orbax ArrayMetadata."""
  try:
    metadata = ocp.PyTreeCheckpointHandler().metadata(epath.Path(item_dir))
  except (OSError, ValueError, KeyError) as e:
    raise CheckpointError(f"{item_dir}: cannot read the orbax metadata ({e})") from e
  tree = getattr(metadata, "tree", metadata)
  if not isinstance(tree, dict):
    raise CheckpointError(f"{item_dir}: the saved tree is a {type(tree).__name__}, not a dict")
  return tree


def _kind(item_dir: str, keys: tuple[str, ...]) -> str:
  """CONVERTED for a tree of collections, TRAINER for a saved TrainState; else an error."""
  if "params" in keys and ("opt_state" in keys or "ema_params" in keys):
    return TRAINER
  if "params" in keys and set(keys) <= {"params", *STATE_COLLECTIONS}:
    return CONVERTED
  raise CheckpointError(f"{item_dir}: top-level keys {list(keys)} are neither converted weights "
                        f"({{'params'}} and optionally {list(STATE_COLLECTIONS)}) nor a train "
                        "state (params, ema_params, opt_state, ...)")


def _step_of(step_dir: str) -> int | None:
  """The step number a step folder is named after, or None."""
  name = os.path.basename(os.path.normpath(step_dir))
  return int(name) if name.isdigit() else None


def _locate_item(item_dir: str, step: int | None) -> Location:
  """The Location of one item directory."""
  keys = tuple(sorted(_tree_metadata(item_dir)))
  kind = _kind(item_dir, keys)
  return Location(item_dir=item_dir, kind=kind, step=step if kind == TRAINER else None, keys=keys)


def _locate_in_step(step_dir: str) -> Location:
  """The item of a step folder that holds params ('default' first, then the others by name)."""
  names = sorted(n for n in os.listdir(step_dir) if _is_item(os.path.join(step_dir, n)))
  names.sort(key=lambda n: n != DEFAULT_ITEM)
  for name in names:
    item_dir = os.path.join(step_dir, name)
    if "params" in _tree_metadata(item_dir):
      return _locate_item(item_dir, _step_of(step_dir))
  raise CheckpointError(f"{step_dir}: no orbax item with 'params' in this step folder "
                        f"(items: {names})")


def _latest_step_dir(checkpoints_dir: str) -> str:
  """The newest finalized step folder of a CheckpointManager directory."""
  steps = ocp.utils.checkpoint_steps(checkpoints_dir)
  if not steps:
    raise CheckpointError(f"{checkpoints_dir}: no finalized checkpoint steps")
  return os.path.join(checkpoints_dir, str(max(steps)))


def locate(path: str) -> Location:
  """Finds the params item of a converted-weights dir, a workdir, `checkpoints/` or a step dir."""
  path = os.path.abspath(path)
  if not os.path.exists(path):
    raise CheckpointError(f"{path}: no such checkpoint directory")
  if not os.path.isdir(path):
    raise CheckpointError(f"{path} is a file, not a checkpoint directory (a PyTorch .pth must be "
                          "converted first: python -m vqa_jax.convert_weights --src --dst)")
  if _is_item(path):
    parent = os.path.dirname(path)
    return _locate_item(path, _step_of(parent) if os.path.basename(path) == DEFAULT_ITEM else None)
  if os.path.isdir(os.path.join(path, CHECKPOINTS_DIR)):
    path = os.path.join(path, CHECKPOINTS_DIR)
  if _step_of(path) is not None and any(_is_item(os.path.join(path, n)) for n in os.listdir(path)):
    return _locate_in_step(path)
  if ocp.utils.checkpoint_steps(path):
    return _locate_in_step(_latest_step_dir(path))
  raise CheckpointError(f"{path}: not a checkpoint: expected a convert_weights output, a trainer "
                        "workdir, its checkpoints/ folder or one of its step folders")


def describe(path: str) -> str:
  """One line saying what kind of checkpoint `path` is, where its params are, and which step."""
  location = locate(path)
  if location.kind == CONVERTED:
    return f"{CONVERTED} in {location.item_dir}"
  return f"{TRAINER} at step {location.step} in {location.item_dir}"


def _flat_shapes(tree: PyTree) -> dict[str, tuple[int, ...]]:
  """'a/b/kernel' -> shape for every leaf of a nested-dict params tree."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(tree), sep="/")
  return {key: tuple(leaf.shape) for key, leaf in flat.items()}


def _listed(keys: list[str]) -> str:
  """At most MAX_LISTED keys, then how many more."""
  more = len(keys) - MAX_LISTED
  return ", ".join(keys[:MAX_LISTED]) + (f" (+{more} more)" if more > 0 else "")


def check_matches(saved: PyTree, like: PyTree, where: str) -> None:
  """Raises a CheckpointError listing missing / unexpected keys and shape mismatches."""
  saved_shapes, like_shapes = _flat_shapes(saved), _flat_shapes(like)
  missing = sorted(set(like_shapes) - set(saved_shapes))
  unexpected = sorted(set(saved_shapes) - set(like_shapes))
  mismatched = [f"{k}: saved {saved_shapes[k]} vs model {like_shapes[k]}"
                for k in sorted(set(saved_shapes) & set(like_shapes))
                if saved_shapes[k] != like_shapes[k]]
  problems = [f"{label} ({len(items)}): {_listed(items)}"
              for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("shape mismatches", mismatched)) if items]
  if problems:
    raise CheckpointError(f"{where} does not fit the model: " + "; ".join(problems))


def _restore_target(saved: PyTree, like: PyTree | None) -> PyTree:
  """Restore target: `like`'s dtypes and shardings, else the saved dtypes on the first device."""
  default = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  if like is None:
    return jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=default), saved)

  def target(leaf):
    sharding = getattr(leaf, "sharding", None) or default
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

  return jax.tree_util.tree_map(target, flax.core.unfreeze(like))


def _subtree(tree: dict, keys: tuple[str, ...]) -> Any:
  """`tree[keys[0]][keys[1]]...`."""
  for key in keys:
    tree = tree[key]
  return tree


def _where(item_dir: str, keys: tuple[str, ...]) -> str:
  """Where a collection is, for messages: "ITEM_DIR ['model_state']['batch_stats']"."""
  return item_dir + " " + "".join(f"['{key}']" for key in keys)


def collection_sources(location: Location, use_ema: bool = True) -> dict[str, tuple[str, ...]]:
  """Where each collection is in the saved tree: 'params' -> ('ema_params',), ...

  Converted weights: each top-level key. Trainer: the (EMA) params, and every collection of the
  state's `model_state` (none when it is absent or None).
  """
  if location.kind == CONVERTED:  # 'params' first, so that its problems are reported first.
    return {collection: (collection,) for collection in sorted(
        location.keys, key=lambda c: c != "params")}
  sources = {"params": (location.params_key(use_ema),)}
  model_state = _tree_metadata(location.item_dir).get(MODEL_STATE)
  if model_state is not None and not isinstance(model_state, dict):
    raise CheckpointError(f"{location.item_dir}: '{MODEL_STATE}' is a "
                          f"{type(model_state).__name__}, not a dict of collections")
  sources.update({collection: (MODEL_STATE, collection) for collection in model_state or {}})
  return sources


def _restore(location: Location, sources: dict[str, tuple[str, ...]],
             like: dict[str, PyTree] | None) -> dict[str, PyTree]:
  """Restores the collections at `sources` (checked against `like`'s, when given)."""
  tree = _tree_metadata(location.item_dir)
  item = {}
  for collection, keys in sources.items():
    saved = _subtree(tree, keys)
    collection_like = None if like is None else like[collection]
    if collection_like is not None:
      check_matches(saved, collection_like, _where(location.item_dir, keys))
    parent = item
    for key in keys[:-1]:
      parent = parent.setdefault(key, {})
    parent[keys[-1]] = _restore_target(saved, collection_like)
  restore_args = ocp.checkpoint_utils.construct_restore_args(item)
  restored = ocp.PyTreeCheckpointHandler().restore(
      epath.Path(location.item_dir),
      args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True))
  return {collection: _subtree(restored, keys) for collection, keys in sources.items()}


def load_params(path: str, like: PyTree | None = None, use_ema: bool = True) -> PyTree:
  """The params of a converted-weights dir or a training run (EMA by default), checked vs `like`."""
  location = locate(path)
  sources = {"params": (location.params_key(use_ema),)}
  return _restore(location, sources, None if like is None else {"params": like})["params"]


def load_variables(path: str, like: dict[str, PyTree] | None = None,
                   use_ema: bool = True) -> dict[str, PyTree]:
  """Every saved Flax collection ('params' always, 'batch_stats' when saved), checked vs `like`.

  `like` is a dict of collections (e.g. `jax.eval_shape(model.init, ...)`): its collection names
  must be the saved ones, and each collection's keys and shapes must match.
  """
  location = locate(path)
  sources = collection_sources(location, use_ema)
  if like is not None and set(like) != set(sources):
    raise CheckpointError(f"{location.item_dir} does not fit the model: saved collections "
                          f"{sorted(sources)}, the model has {sorted(like)}")
  return _restore(location, sources, like)
