"""`python -m vqa_jax.main` exit paths: the status, the last checkpoint kept, the error printed last.

One smoke run each (~20 s): a non-finite loss right after an asynchronous save, and SIGTERM.
"""

import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers import SIGNALLED_RUN_STEPS
from tests.helpers import checkpoint_steps
from tests.helpers import saved_params
from tests.helpers import start_and_signal
from vqa_jax.training import interrupts

pytestmark = pytest.mark.integration  # subprocess CLI runs


@pytest.fixture
def env(tmp_path):
  """The environment of a test run: its own data cache, cheap compiles."""
  return dict(os.environ, VQA_JAX_CACHE=str(tmp_path / "cache"),
              JAX_DISABLE_MOST_OPTIMIZATIONS="true")


def test_non_finite_loss_keeps_the_async_checkpoint_and_prints_the_error_last(tmp_path, env):
  # Warmup 2: step 1 has learning rate 0, step 2's 0.5e30 sends the weights to inf, so step 3's
  # loss is nan, right after step 2's asynchronous save.
  workdir = tmp_path / "work"
  proc = subprocess.run(
      [sys.executable, "-m", "vqa_jax.main", "--config=configs/smoke.py", f"--workdir={workdir}",
       "--config.train.steps=30", "--config.train.learning_rate=1e30",
       "--config.train.checkpoint_every=2"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2"]  # finalized, no N.orbax-checkpoint-tmp
  assert set(saved_params(str(workdir))) == {"params", "ema_params"}  # restorable
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith("FloatingPointError: non-finite loss") and "at step 3;" in lines[-1]
  assert proc.stderr.count("Traceback") == 1
  assert "Event loop is closed" not in proc.stderr and "after shutdown" not in proc.stderr
  assert not (workdir / "run.lock").exists()


def test_sigterm_exits_with_the_interrupted_status(tmp_path, env):
  # helpers.signalled_run_command's run: 60 steps, a checkpoint every 5; SIGTERM after the first.
  workdir = str(tmp_path / "work")
  rc, stderr = start_and_signal(workdir, env, signal.SIGTERM, after_step=0)
  assert rc == interrupts.EXIT_INTERRUPTED == 75, stderr[-2000:]
  stopped_at = max(checkpoint_steps(workdir))
  assert f"interrupted by SIGTERM; checkpoint saved at step {stopped_at}" in stderr
  assert 0 < stopped_at < SIGNALLED_RUN_STEPS == 60
  assert all(n.isdigit() for n in os.listdir(os.path.join(workdir, "checkpoints")))  # no tmp left


@pytest.mark.parametrize("srun_status,requeued", [(75, True), (0, False), (1, False)])
def test_slurm_script_requeues_an_interrupted_run(tmp_path, srun_status, requeued):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "srun").write_text(f"#!/bin/sh\nexit {srun_status}\n")
  (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/scontrol_args\n")
  for tool in ("srun", "scontrol"):
    (bin_dir / tool).chmod(0o755)
  env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_SUBMIT_DIR=str(REPO_ROOT),
             SLURM_JOB_ID="4242")
  proc = subprocess.run(["bash", str(REPO_ROOT / "launch" / "slurm_gpu.sbatch"), "--workdir=/x"],
                        env=env, capture_output=True, text=True, timeout=60)
  assert proc.returncode == srun_status
  args = tmp_path / "scontrol_args"
  assert (args.read_text().split() == ["requeue", "4242"]) if requeued else not args.exists()


def test_missing_config_file_is_named_alone(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "vqa_jax.main", "--config=configs/nope.py:a,b",
                         f"--workdir={tmp_path}"], cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1] == ("--config=configs/nope.py:a,b: configs/nope.py: "
                                                  "file does not exist")
  assert "Traceback" not in proc.stderr
