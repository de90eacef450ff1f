"""The big-run switches of issues 4 and 8 through the trainer: bf16 compute and per-block remat."""

import contextlib
import io

import jax
import numpy as np
import pytest

from tests.helpers import load_config
from tests.helpers import saved_params
from vqa_jax.training import trainer

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.mark.slow  # ~15 s; bf16 and remat gradients are checked in test_model
def test_bf16_remat_run_trains_with_float32_params(tmp_path, monkeypatch):
  """`model.dtype='bfloat16'` + `model.remat` from the config: the compiled step computes in bf16
  with rematerialised blocks, while params, EMA and checkpoints stay float32 and the run is finite."""
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  config = load_config("smoke")
  config.model.dtype = "bfloat16"
  config.model.remat = True
  config.train.steps = 3
  config.train.checkpoint_every = 3
  compiled_text = []
  original = trainer.compile_step

  def recording_compile(step_fn, state, device_batch, rng):
    compiled = original(step_fn, state, device_batch, rng)
    compiled_text.append(compiled.as_text())
    return compiled

  monkeypatch.setattr(trainer, "compile_step", recording_compile)
  with contextlib.redirect_stdout(io.StringIO()):
    results = trainer.train(config, str(tmp_path / "work"))

  hlo = compiled_text[0]
  assert "bf16" in hlo  # the matmuls run in bfloat16
  saved = saved_params(str(tmp_path / "work"))
  dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(saved)}
  assert dtypes == {np.dtype(np.float32)}
  assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(saved))
  for model_results in results["test"].values():
    assert np.isfinite(model_results["srcc"])
