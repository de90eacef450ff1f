"""Radius sweeps in one program: the CLI's table, and a population member equals the single run."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.helpers import REPO_ROOT
from tests.helpers import assert_same_structure
from tests.helpers import assert_trees_close
from tests.helpers import load_config
from tests.helpers import smoke_batch
from tests.helpers import member_state
from vqa_jax import families
from vqa_jax.training import checkpointing
from vqa_jax.families import losses
from vqa_jax.training import optim
from vqa_jax.runtime import sharding
from vqa_jax.training import sweep
from vqa_jax.training import train_step
from vqa_jax.training import trainer
from vqa_jax.data import sources
from vqa_jax.models import fast_vqa as model_lib


def test_members_are_kinds_times_radii():
  base = train_step.PerturbConfig("awp", 1e-4, every_k=2)
  members = sweep.make_members(base, ["awp", "sam"], [0.0, 1e-3])
  assert [(m.kind, m.radius) for m in members] == [("awp", 0.0), ("awp", 1e-3), ("sam", 0.0),
                                                   ("sam", 1e-3)]
  assert all(m.every_k == 2 for m in members)


def test_population_member_equals_single_run_on_the_smoke_model(fast_compile):
  config = load_config("smoke")
  model = model_lib.build_model(config.model)
  loss_fn = losses.make_loss_fn(model, 0.3)
  tx = optax.sgd(0.3, momentum=0.9)  # see tests/test_data_parallel.py on Adam and rounding
  params = model.init({"params": jax.random.key(0)}, jnp.zeros((1, 4, 32, 32, 3), jnp.uint8),
                      train=False)["params"]
  cfgs = [train_step.PerturbConfig("awp", 0.0), train_step.PerturbConfig("awp", 1e-2)]
  batches = [jax.device_put(smoke_batch(i)) for i in range(2)]
  key = jax.random.key(3)
  states = train_step.stack_states([train_step.create_train_state(params, tx)] * 2)
  population = jax.jit(train_step.make_population_step(loss_fn, tx, cfgs, 0.9))
  single = train_step.create_train_state(params, tx)
  single_step = jax.jit(train_step.make_train_step(loss_fn, tx, cfgs[1], 0.9))
  for batch in batches:
    states, metrics = population(states, batch, key)
    single, single_metrics = single_step(single, batch, key)
  member = member_state(states, 1)
  assert_trees_close(member, single, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(metrics["perturbed_loss"][1], single_metrics["perturbed_loss"],
                             rtol=1e-5)
  assert float(metrics["perturbation_norm"][0]) == 0.0 < float(metrics["perturbation_norm"][1])


@pytest.mark.integration
@pytest.mark.slow  # ~20 s; a member equals its single run in test_population_member_equals_...
def test_sweep_cli_prints_one_row_per_gamma(tmp_path):
  env = dict(os.environ, VQA_JAX_CACHE=str(tmp_path / "cache"), JAX_DISABLE_MOST_OPTIMIZATIONS="1",
             XLA_FLAGS="")
  workdir = tmp_path / "work"
  result = subprocess.run(
      [sys.executable, "-m", "vqa_jax.sweep", "--config=configs/smoke.py", "--gammas=0,1e-3",
       f"--workdir={workdir}", "--config.train.steps=2"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  header = lines[1].split()
  assert header[:3] == ["kind", "radius", "train_loss"]
  assert header[3:] == [f"{s}_{m}" for s in ("train", "test", "cross") for m in ("srcc", "plcc")]
  rows = [line.split() for line in lines[3:5]]
  assert [(r[0], float(r[1])) for r in rows] == [("awp", 0.0), ("awp", 1e-3)]
  assert all(np.isfinite(float(x)) for r in rows for x in r[2:])
  summary = json.loads(lines[-1])
  assert [m["radius"] for m in summary["members"]] == [0.0, 1e-3]
  assert set(summary["members"][0]["results"]) == {"train", "test", "cross"}
  with open(workdir / "sweep.jsonl") as f:
    assert len(f.readlines()) == 2
  stored = json.loads((workdir / "config.json").read_text())["train"]  # resolved: cosine follows
  assert (stored["steps"], stored["warmup_steps"], stored["cosine_steps"]) == (2, 2, 2)


@pytest.mark.slow
def test_sweep_member_equals_the_trainer_run(tmp_path, monkeypatch):
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  config = load_config("smoke")
  config.train.steps = 3
  config.perturb.gamma = 1e-3
  trainer.train(config, str(tmp_path / "single"))
  mesh = sharding.make_mesh()
  base = train_step.PerturbConfig.from_config(config.perturb)
  target = trainer.init_state(families.build(config), optim.make_optimizer(config.train), base,
                              config.seed, mesh)
  single = checkpointing.restore_latest(
      checkpointing.checkpoint_manager(str(tmp_path / "single")), target)

  states, _ = sweep.train_population(config, sweep.make_members(base, ["awp"], [0.0, 1e-3]), mesh,
                                     sources.load_splits(config.data), str(tmp_path / "sweep"))
  # AdamW turns rounding noise in a gradient that is zero in exact arithmetic into steps of about
  # ±lr: the loss is shift-invariant, so the head's last bias has no gradient. Elsewhere the member
  # follows the single run to rounding (the gamma = 0 member is ~3e-3 away).
  def max_diff(i):
    member = member_state(states, i).params
    assert_same_structure(member, single.params)
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(member),
                                       jax.tree_util.tree_leaves(single.params))
               if jax.tree_util.keystr(path) != "['head']['fc_last']['bias']")

  assert max_diff(1) < 1e-5
  assert max_diff(0) > 1e-3
