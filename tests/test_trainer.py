"""End to end: the smoke config trains, checkpoints, evaluates, prints, and resumes; a real model learns."""

import importlib.util
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.conftest import REPO_ROOT
from vqa_jax import config_base
from vqa_jax import train_step
from vqa_jax import trainer
from vqa_jax.models import model as model_lib

pytestmark = pytest.mark.usefixtures("fast_compile")


def load_config(name):
  """get_config() of configs/<name>.py, loaded by path as absl's config flag does."""
  spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.mark.parametrize("name", ["demo", "smoke"])
def test_configs_validate(name):
  config_base.validate(load_config(name))


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_smoke_run_end_to_end_and_resume(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  workdir = str(tmp_path / "work")
  config = load_config("smoke")
  results = trainer.train(config, workdir)

  assert set(results) == {"test", "cross"}
  for by_model in results.values():
    assert set(by_model) == {"raw", "ema"}
    for m in by_model.values():
      assert all(math.isfinite(v) for v in m.values())
      assert -1 <= m["srcc"] <= 1 and m["rmse"] > 0

  printed = capsys.readouterr().out.strip().splitlines()
  assert printed[0].split()[:3] == ["eval", "set", "model"]
  assert json.loads(printed[-1]) == {"step": 6, "results": results}

  logged = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in logged] == [2, 4, 6]
  for r in logged:
    assert math.isfinite(r["loss"]) and math.isfinite(r["perturbed_loss"])
    assert r["perturbation_norm"] > 0
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]

  # Resume: a longer run in the same workdir continues from step 6 instead of starting over.
  config.unlock()
  config.train.steps = 8
  trainer.train(config, workdir)
  assert [r["step"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))] == [2, 4, 6, 8]


def test_jitted_awp_step_lowers_loss_of_real_model_on_fixed_batch():
  config = load_config("smoke")
  model = model_lib.build_model(config.model)
  rng = np.random.default_rng(0)
  # Videos whose brightness ranks like their labels, so there is something to learn.
  labels = np.linspace(1.0, 5.0, 8).astype(np.float32)
  video = (rng.integers(0, 60, size=(8, 4, 32, 32, 3)) + 40 * labels[:, None, None, None, None])
  batch = {"video": jnp.asarray(video.astype(np.uint8)), "label": jnp.asarray(labels)}
  params = model.init({"params": jax.random.key(0)}, batch["video"][:1], train=False)["params"]
  tx = optax.adamw(3e-3, weight_decay=0.05)
  step = jax.jit(train_step.make_train_step(trainer.make_loss_fn(model, 0.3), tx,
                                            train_step.PerturbConfig("awp", 1e-3), 0.9))
  state = train_step.create_train_state(params, tx)
  losses = []
  for _ in range(25):
    state, metrics = step(state, batch, jax.random.key(1))
    losses.append(float(metrics["loss"]))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
