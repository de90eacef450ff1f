"""A run killed with SIGKILL (and one stopped by SIGTERM, exit status 75) resumes to the
uninterrupted run's params.

Slow (~2-3 min on 2 cores): four `python -m vqa_jax.main` processes on the smoke config.
"""

import os
import signal
import subprocess

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers import SIGNALLED_RUN_STEPS as STEPS
from tests.helpers import assert_trees_equal
from tests.helpers import checkpoint_steps
from tests.helpers import learning_scalars
from tests.helpers import saved_params
from tests.helpers import signalled_run_command as command
from tests.helpers import start_and_signal
from vqa_jax.training import interrupts

pytestmark = pytest.mark.integration  # subprocess CLI runs


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
  assert_trees_equal(saved_params(interrupted), saved_params(reference))
  assert (learning_scalars(os.path.join(interrupted, "metrics.jsonl"))
          == learning_scalars(os.path.join(reference, "metrics.jsonl")))
