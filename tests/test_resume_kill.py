"""A run killed with SIGKILL (and one stopped by SIGTERM, exit status 75) resumes to the
uninterrupted run's params.

Slow (~2-3 min on 2 cores): four `python -m vqa_jax.main` processes on the smoke config.
"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.test_trainer import learning_scalars
from tests.test_trainer import saved_params
from vqa_jax.training import interrupts

pytestmark = pytest.mark.integration  # subprocess CLI runs

STEPS = 60
FLAGS = ["--config=configs/smoke.py", f"--config.train.steps={STEPS}",
         "--config.train.checkpoint_every=5", "--config.train.log_every=5"]


def command(workdir):
  return [sys.executable, "-m", "vqa_jax.main", *FLAGS, f"--workdir={workdir}"]


def checkpoint_steps(workdir):
  """The finalized checkpoint steps in workdir (orbax renames a step folder when it is complete)."""
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def start_and_signal(workdir, env, sig, after_step):
  """Starts a run, sends `sig` once a checkpoint past `after_step` exists; returns (rc, stderr)."""
  proc = subprocess.Popen(command(workdir), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 600
  while not any(s > after_step for s in checkpoint_steps(workdir)):
    assert proc.poll() is None, "the run ended before it could be signalled"
    assert time.monotonic() < deadline
    time.sleep(0.01)
  proc.send_signal(sig)
  _, stderr = proc.communicate(timeout=600)
  return proc.returncode, stderr


@pytest.mark.slow
def test_sigkill_and_sigterm_then_resume_reach_bit_identical_params(tmp_path):
  env = dict(os.environ, VQA_JAX_CACHE=str(tmp_path / "cache"),
             JAX_DISABLE_MOST_OPTIMIZATIONS="true")
  reference, interrupted = str(tmp_path / "reference"), str(tmp_path / "interrupted")
  subprocess.run(command(reference), cwd=REPO_ROOT, env=env, check=True, capture_output=True,
                 timeout=600)

  rc, _ = start_and_signal(interrupted, env, signal.SIGKILL, after_step=0)
  assert rc == -signal.SIGKILL
  killed_at = max(checkpoint_steps(interrupted))
  assert killed_at < STEPS

  rc, stderr = start_and_signal(interrupted, env, signal.SIGTERM, after_step=killed_at)
  assert rc == interrupts.EXIT_INTERRUPTED, stderr[-2000:]
  assert "interrupted by SIGTERM; checkpoint saved at step" in stderr
  assert "resumed from" in stderr and f"at step {killed_at}" in stderr
  stopped_at = max(checkpoint_steps(interrupted))
  assert killed_at < stopped_at < STEPS

  subprocess.run(command(interrupted), cwd=REPO_ROOT, env=env, check=True, capture_output=True,
                 timeout=600)
  jax.tree_util.tree_map(np.testing.assert_array_equal, saved_params(interrupted),
                         saved_params(reference))
  assert (learning_scalars(os.path.join(interrupted, "metrics.jsonl"))
          == learning_scalars(os.path.join(reference, "metrics.jsonl")))
