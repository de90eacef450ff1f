"""Two processes x 2 CPU devices on 127.0.0.1 (gloo) train like one process x 4 devices.

Each run is `python -m vqa_jax.main` on configs/smoke.py in subprocesses started by
launch/local_multiprocess.sh; the final params are read back with vqa_jax.convert.pretrained.
"""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from vqa_jax.convert import pretrained

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLAGS = ("--config=configs/smoke.py", "--config.train.steps=4", "--config.train.checkpoint_every=2",
         "--config.train.log_every=2", "--config.train.cosine_steps=4",
         "--config.data.eval_splits=('test',)", "--config.checkpoint.async_save=False")


def launch(num_processes: int, devices: int, workdir, cache, *extra) -> str:
  """Runs the local multi-process launcher; returns its combined output (fails the test on error)."""
  env = dict(os.environ, VQA_JAX_CACHE=str(cache), PYTHON=sys.executable)
  env.pop("XLA_FLAGS", None)
  proc = subprocess.run(["bash", "launch/local_multiprocess.sh", str(num_processes), str(devices),
                         *FLAGS, f"--workdir={workdir}", *extra], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
  return proc.stdout + proc.stderr


def final_params(workdir) -> dict:
  params = pretrained.load_params(str(workdir), use_ema=False)
  return {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_flatten_with_path(params)[0]}


# The PLCC + rank loss is shift-invariant, so this bias's gradient is rounding noise that AdamW turns
# into steps of about +-lr (see tests/test_data_parallel.py): it is bounded, not compared.
SHIFT_BIAS = "['head']['fc_last']['bias']"


def test_two_processes_match_one_process_and_resume_in_one(tmp_path):
  cache = tmp_path / "cache"
  two = launch(2, 2, tmp_path / "two", cache)
  assert "process 0 of 2" in two and "per-device memory of the train step" in two
  launch(1, 4, tmp_path / "one", cache)
  two_params, one_params = final_params(tmp_path / "two"), final_params(tmp_path / "one")
  assert two_params.keys() == one_params.keys() and SHIFT_BIAS in two_params
  for key in two_params.keys() - {SHIFT_BIAS}:
    np.testing.assert_allclose(two_params[key], one_params[key], atol=1e-5, rtol=1e-5, err_msg=key)
  lr, steps = 1e-3, 4
  assert np.abs(two_params[SHIFT_BIAS] - one_params[SHIFT_BIAS]).max() <= 2 * lr * steps
  # Only process 0 wrote the metric files: one record per log step.
  lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 2
  # The 2-process checkpoint (step 4) resumes in one process for 2 more steps.
  # (a longer cosine changes the schedule of the steps already run: check_resume asks for consent)
  out = launch(1, 4, tmp_path / "two", cache, "--config.train.steps=6",
               "--config.train.cosine_steps=6", "--allow_config_change")
  assert "resumed from" in out and "at step 4" in out
  assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 3
