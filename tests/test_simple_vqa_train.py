"""SimpleVQA-AWP end to end through trainer.run on a tiny synthetic set (the SimpleVQA family).

The configs/simple_vqa_demo.py recipe shrunk: 16 + 8 + 8 synthetic videos of 4 s (4 fps), 4 frames
at 1 frame/s, a tiny ResNet and random 8-d motion features written as `simple_vqa_features` writes
them (index.json + one .npy per video).
"""

import json
import os
import shutil

import chex
import jax
import numpy as np
import pytest

from tests.helpers import load_config
from tests.helpers import saved_checkpoint
from tests.helpers import zip_leaves
from vqa_jax.config import config_base
from vqa_jax.config import validation
from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.training import trainer
from vqa_jax.data import sources
from vqa_jax.config.specs import SyntheticSpec

pytestmark = pytest.mark.usefixtures("fast_compile")

MOTION_DIM = 8


def write_random_motion(splits, out_dir, rows=4):
  """index.json + <name>.npy of random (rows, MOTION_DIM) features for every video of `splits`."""
  os.makedirs(out_dir)
  rng = np.random.default_rng(0)
  index = {}
  for entries in splits.values():
    for entry in entries:
      name = f"{len(index)}.npy"
      np.save(os.path.join(out_dir, name), rng.normal(size=(rows, MOTION_DIM)).astype(np.float32))
      index[os.path.abspath(entry.path)] = name
  with open(os.path.join(out_dir, "index.json"), "w", encoding="utf-8") as f:
    json.dump(index, f)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """(config factory, splits): the demo config shrunk, its tiny data and motion features."""
  root = tmp_path_factory.mktemp("simple_vqa")

  def make_config(steps=4):
    c = load_config("simple_vqa_demo")
    c.data.synthetic = config_base.synthetic_config(SyntheticSpec(
        num_train=16, num_test=8, num_cross=8, height=64, width=80, num_frames=16, fps=4.0))
    c.update_from_flattened_dict({  # as --config.FIELD=VALUE flags would
        "data.cache_dir": str(root / "cache"), "data.motion_dir": str(root / "motion"),
        "model.width": 4, "model.hidden": 8, "model.motion_dim": MOTION_DIM,
        "sampling.clip_len": 4, "sampling.short_side": 48, "sampling.crop": 48,
        "train.steps": steps, "train.batch_size": 8, "train.log_every": 2,
        "train.checkpoint_every": 2, "train.lr_step_every": 2, "eval.batch_size": 8,
        "log.tensorboard": False, "checkpoint.async_save": False})
    return c

  splits = sources.load_splits(make_config().data)
  write_random_motion(splits, str(root / "motion"))
  return make_config, splits


@pytest.mark.slow  # ~60 s on 2 cores; the SimpleVQA step and loss are checked in the default run
def test_simple_vqa_awp_trains_and_evaluates(setup, tmp_path):
  make_config, splits = setup
  config = make_config()
  validation.validate(config)
  summary = trainer.run(config, str(tmp_path / "full"), splits)
  for split in ("test", "cross"):
    assert set(summary.final[split]) == {"raw"}
    assert all(np.isfinite(v) for v in summary.final[split]["raw"].values())
  with open(tmp_path / "full" / "metrics.jsonl", encoding="utf-8") as f:
    logged = [json.loads(line) for line in f]
  assert all(np.isfinite(r["loss"]) and np.isfinite(r["perturbed_loss"]) for r in logged)
  # StepLR every 2 steps x0.7 (step 3's update used the second period's rate).
  np.testing.assert_allclose(logged[-1]["lr_head"], 1e-3 * 0.7, rtol=1e-6)

  full = saved_checkpoint(tmp_path / "full")
  _, init_state = families.build(config).init_variables(jax.random.key(config.seed))
  init_stats = jax.device_get(init_state["batch_stats"])
  moved = [not np.array_equal(a, b) for a, b in zip_leaves(full["model_state"]["batch_stats"],
                                                             init_stats)]
  assert moved and all(moved)  # every running statistic moved


@pytest.mark.slow
def test_simple_vqa_awp_resumes_bit_identically(setup, tmp_path):
  """As if interrupted after step 2: resumed from that checkpoint, steps 3-4 give the same state,
  model_state included."""
  make_config, splits = setup
  config = make_config()
  trainer.run(config, str(tmp_path / "full"), splits)
  full = saved_checkpoint(tmp_path / "full")
  shutil.rmtree(tmp_path / "full" / "checkpoints" / "4")
  trainer.run(config, str(tmp_path / "full"), splits)
  resumed = saved_checkpoint(tmp_path / "full")
  for key in ("params", "model_state", "opt_state", "ema_params"):
    chex.assert_trees_all_equal(full[key], resumed[key], custom_message=key)


def test_missing_motion_features_fail_before_training(setup, tmp_path):
  make_config, splits = setup
  config = make_config()
  config.data.motion_dir = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="nowhere/index.json"):
    trainer.run(config, str(tmp_path / "w"), splits)
  os.makedirs(tmp_path / "partial")
  with open(tmp_path / "partial" / "index.json", "w", encoding="utf-8") as f:
    json.dump({}, f)
  config.data.motion_dir = str(tmp_path / "partial")
  with pytest.raises(FileNotFoundError, match=r"split '\w+': \d+ of \d+ videos lack usable motion"):
    trainer.run(config, str(tmp_path / "w"), splits)


def test_init_checkpoint_gives_params_and_batch_stats(setup, tmp_path):
  """init.checkpoint with {'params', 'batch_stats'} (convert_weights' layout) sets both."""
  from vqa_jax.training import optim  # pylint: disable=g-import-not-at-top
  from vqa_jax.runtime import sharding  # pylint: disable=g-import-not-at-top
  from vqa_jax.convert import state_dicts  # pylint: disable=g-import-not-at-top
  make_config, _ = setup
  config = make_config()
  family = families.build(config)
  saved_params, saved_state = family.init_variables(jax.random.key(123))
  saved_state = jax.tree_util.tree_map(lambda x: x + 0.5, saved_state)  # not a fresh init's
  state_dicts.save_variables(str(tmp_path / "init"), {"params": saved_params, **saved_state})
  config.init.checkpoint = str(tmp_path / "init")
  mesh = sharding.make_mesh()
  tx = optim.make_optimizer(config.train)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb)
  fresh = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh)
  state = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh,
                             *trainer.pretrained_variables(config, fresh))
  for got, want in ((state.params, saved_params), (state.model_state, saved_state),
                    (state.ema_params, saved_params)):
    chex.assert_trees_all_equal(got, want)
