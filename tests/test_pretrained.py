"""vqa_jax.convert.pretrained: params from converted weights and trainer checkpoints, checked vs a model."""

import dataclasses
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from vqa_jax.training import checkpointing
from vqa_jax.convert import pretrained
from vqa_jax.convert import state_dicts
from vqa_jax.training import train_step


def tiny_params(offset: float) -> dict:
  """A two-group params tree whose leaves are arange + offset (distinct values per leaf)."""
  return {"backbone": {"dense": {"kernel": jnp.arange(12.0).reshape(3, 4) + offset,
                                 "bias": jnp.arange(4.0) + offset}},
          "head": {"fc": {"kernel": jnp.arange(4.0).reshape(4, 1) + offset}}}


def train_state(raw_offset: float, ema_offset: float, step: int) -> train_step.TrainState:
  """A TrainState (AdamW state) with raw params `tiny_params(raw)` and EMA `tiny_params(ema)`."""
  state = train_step.create_train_state(tiny_params(raw_offset), optax.adamw(1e-3))
  return state.replace(step=jnp.asarray(step, jnp.int32), ema_params=tiny_params(ema_offset))


def assert_tree_equal(actual, expected):
  """Same keys and bit-identical leaves."""
  chex.assert_trees_all_equal(actual, expected)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
  """A converted-weights dir and a trainer workdir with steps 3 and 7 saved replicated on 8 devices."""
  root = tmp_path_factory.mktemp("pretrained")
  state_dicts.save_variables(str(root / "converted"), {"params": tiny_params(100.0)})
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  manager = checkpointing.checkpoint_manager(str(root / "workdir"), max_to_keep=5)
  for step, raw, ema in ((3, 30.0, 31.0), (7, 70.0, 71.0)):
    checkpointing.save(manager, step, jax.device_put(train_state(raw, ema, step), replicated),
                       force=True)
  manager.wait_until_finished()
  # An unfinished save (orbax's temporary name) must be ignored.
  os.makedirs(root / "workdir" / "checkpoints" / "9.orbax-checkpoint-tmp-1234")
  return root


def test_converted_weights_round_trip(dirs):
  path = str(dirs / "converted")
  assert_tree_equal(pretrained.load_params(path), tiny_params(100.0))
  assert_tree_equal(pretrained.load_params(path, use_ema=False), tiny_params(100.0))
  assert pretrained.describe(path) == f"converted weights in {path}"


@pytest.mark.parametrize("sub", ["", "checkpoints", "checkpoints/7", "checkpoints/7/default"])
def test_workdir_latest_step_ema_by_default_raw_on_request(dirs, sub):
  path = os.path.join(dirs / "workdir", sub)
  assert_tree_equal(pretrained.load_params(path), tiny_params(71.0))
  assert_tree_equal(pretrained.load_params(path, use_ema=False), tiny_params(70.0))
  item = dirs / "workdir" / "checkpoints" / "7" / "default"
  assert pretrained.describe(path) == f"trainer checkpoint at step 7 in {item}"


def test_step_folder_picks_that_step(dirs):
  path = str(dirs / "workdir" / "checkpoints" / "3")
  assert_tree_equal(pretrained.load_params(path), tiny_params(31.0))
  assert_tree_equal(pretrained.load_params(path, use_ema=False), tiny_params(30.0))
  assert "at step 3" in pretrained.describe(path)


def test_restores_onto_the_device_without_like(dirs):
  params = pretrained.load_params(str(dirs / "workdir"))
  for leaf in jax.tree_util.tree_leaves(params):
    assert leaf.sharding == jax.sharding.SingleDeviceSharding(jax.devices()[0])


def test_like_gives_dtype_and_sharding(dirs):
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("data",))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  like = jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, jnp.bfloat16, sharding=replicated), tiny_params(0))
  params = pretrained.load_params(str(dirs / "workdir"), like=like)
  expected = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), tiny_params(71.0))
  assert_tree_equal(params, expected)
  for leaf in jax.tree_util.tree_leaves(params):
    assert leaf.dtype == jnp.bfloat16 and leaf.sharding == replicated


def test_mismatch_lists_missing_unexpected_and_shapes(dirs):
  like = tiny_params(0)
  like["backbone"]["dense"]["kernel"] = jnp.zeros((3, 5))
  like["backbone"]["norm"] = {"scale": jnp.zeros(4)}
  del like["head"]
  with pytest.raises(pretrained.CheckpointError) as error:
    pretrained.load_params(str(dirs / "workdir"), like=like)
  message = str(error.value)
  assert str(dirs / "workdir" / "checkpoints" / "7" / "default") in message
  assert "['ema_params']" in message
  assert "missing keys (1): backbone/norm/scale" in message
  assert "unexpected keys (1): head/fc/kernel" in message
  assert "backbone/dense/kernel: saved (3, 4) vs model (3, 5)" in message
  assert isinstance(error.value, ValueError)


def test_bad_paths_name_the_path(dirs, tmp_path):
  missing = tmp_path / "nope"
  with pytest.raises(pretrained.CheckpointError, match=f"{missing}: no such"):
    pretrained.load_params(str(missing))
  pth = tmp_path / "model.pth"
  pth.write_bytes(b"\x80")
  with pytest.raises(pretrained.CheckpointError, match="model.pth is a file.*convert_weights"):
    pretrained.load_params(str(pth))
  with pytest.raises(pretrained.CheckpointError, match=f"{tmp_path}: not a checkpoint"):
    pretrained.describe(str(tmp_path))
  empty_run = tmp_path / "run"
  os.makedirs(empty_run / "checkpoints")
  with pytest.raises(pretrained.CheckpointError, match=f"{empty_run}/checkpoints: not a checkp"):
    pretrained.load_params(str(empty_run))


def test_unknown_tree_is_rejected(tmp_path):
  path = tmp_path / "other"
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(str(path), {"weights": jnp.zeros(2)})
  checkpointer.wait_until_finished()
  with pytest.raises(pretrained.CheckpointError, match=r"top-level keys \['weights'\]"):
    pretrained.load_params(str(path))


def test_step_with_a_metrics_item_reads_the_state(tmp_path):
  """A manager that keeps the best step also writes a 'metrics' item beside 'default'."""
  options = ocp.CheckpointManagerOptions(max_to_keep=1, best_fn=lambda m: m["score"],
                                         best_mode="max", create=True)
  manager = ocp.CheckpointManager(str(tmp_path / "best" / "checkpoints"), options=options)
  manager.save(4, args=ocp.args.StandardSave(train_state(40.0, 41.0, 4)), metrics={"score": 0.5})
  manager.wait_until_finished()
  assert {"default", "metrics"} <= set(os.listdir(tmp_path / "best" / "checkpoints" / "4"))
  assert_tree_equal(pretrained.load_params(str(tmp_path / "best")), tiny_params(41.0))
  assert "at step 4" in pretrained.describe(str(tmp_path / "best"))


def batch_stats(offset: float) -> dict:
  """A 'batch_stats' collection for the backbone of `tiny_params`."""
  return {"backbone": {"bn": {"mean": jnp.arange(4.0) + offset, "var": jnp.ones(4) + offset}}}


@pytest.fixture(scope="module")
def stateful_dirs(tmp_path_factory):
  """Converted weights with batch_stats; trainer workdirs with a model_state and an old one."""
  root = tmp_path_factory.mktemp("pretrained_variables")
  state_dicts.save_variables(str(root / "converted"),
                             {"params": tiny_params(100.0), "batch_stats": batch_stats(200.0)})
  manager = checkpointing.checkpoint_manager(str(root / "workdir"), max_to_keep=2)
  state = train_state(50.0, 51.0, 5).replace(model_state={"batch_stats": batch_stats(52.0)})
  checkpointing.save(manager, 5, state, force=True)
  manager.wait_until_finished()
  # A checkpoint written before TrainState had `model_state`: the same tree without that key.
  old = dataclasses.asdict(train_state(60.0, 61.0, 6))
  del old["model_state"]
  manager = checkpointing.checkpoint_manager(str(root / "old_workdir"), max_to_keep=2)
  checkpointing.save(manager, 6, old, force=True)
  manager.wait_until_finished()
  return root


def test_load_variables_of_converted_weights(stateful_dirs, dirs):
  path = str(stateful_dirs / "converted")
  expected = {"params": tiny_params(100.0), "batch_stats": batch_stats(200.0)}
  assert_tree_equal(pretrained.load_variables(path), expected)
  assert_tree_equal(pretrained.load_params(path), tiny_params(100.0))
  like = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), expected)
  assert_tree_equal(pretrained.load_variables(path, like=like), expected)
  # A params-only dir (written before batch_stats existed) still loads.
  assert_tree_equal(pretrained.load_variables(str(dirs / "converted")),
                    {"params": tiny_params(100.0)})


def test_load_variables_of_a_trainer_checkpoint(stateful_dirs, dirs):
  """(EMA) params plus the collections of `model_state`; none when it is None or absent."""
  path = str(stateful_dirs / "workdir")
  assert_tree_equal(pretrained.load_variables(path),
                    {"params": tiny_params(51.0), "batch_stats": batch_stats(52.0)})
  assert_tree_equal(pretrained.load_variables(path, use_ema=False),
                    {"params": tiny_params(50.0), "batch_stats": batch_stats(52.0)})
  assert_tree_equal(pretrained.load_params(path), tiny_params(51.0))
  assert_tree_equal(pretrained.load_variables(str(dirs / "workdir")), {"params": tiny_params(71.0)})
  old = str(stateful_dirs / "old_workdir")
  assert "model_state" not in pretrained.locate(old).keys
  assert_tree_equal(pretrained.load_variables(old), {"params": tiny_params(61.0)})


def test_load_variables_like_checks_each_collection(stateful_dirs):
  like = {"params": tiny_params(0), "batch_stats": batch_stats(0)}
  like["batch_stats"]["backbone"]["bn"]["mean"] = jnp.zeros(5)
  workdir = stateful_dirs / "workdir"
  with pytest.raises(pretrained.CheckpointError) as error:
    pretrained.load_variables(str(workdir), like=like)
  item = workdir / "checkpoints" / "5" / "default"
  assert str(error.value) == (f"{item} ['model_state']['batch_stats'] does not fit the model: "
                              "shape mismatches (1): backbone/bn/mean: saved (4,) vs model (5,)")
  with pytest.raises(pretrained.CheckpointError,
                     match=r"converted does not fit the model: saved collections "
                     r"\['batch_stats', 'params'\], the model has \['params'\]"):
    pretrained.load_variables(str(stateful_dirs / "converted"), like={"params": tiny_params(0)})
