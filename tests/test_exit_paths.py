"""`python -m vqa_jax.main` exit paths: the status, the last checkpoint kept, the error printed last.

One smoke run each (~20 s): a non-finite loss right after an asynchronous save, SIGTERM, and a
disk that fills up under the checkpoints. Usage errors (exit status 2, one line and the usage hint,
before any model is built; a second or two each) for every program on the shared entry point.
"""

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers import SIGNALLED_RUN_STEPS
from tests.helpers import checkpoint_steps
from tests.helpers import saved_params
from tests.helpers import start_and_signal
from vqa_jax.runtime import entry_point
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
  # Quiet by default: one line names the stored config, no dump of its fields.
  assert f"config: {workdir / 'config.yaml'} (--print_config shows it)" in proc.stderr
  assert "batch_size:" not in proc.stderr and "learning_rate:" not in proc.stderr


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


def _run(*args, timeout=120):
  """`python -m ARGS...` from the repository: the CompletedProcess (text)."""
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True,
                        text=True, timeout=timeout, check=False,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))


def assert_usage_error(proc, message):
  """Exit status 2, stderr exactly `message` and the usage hint, no traceback."""
  assert proc.returncode == entry_point.EXIT_USAGE == 2, proc.stderr[-2000:]
  assert proc.stderr.splitlines() == [message, entry_point.USAGE_HINT], proc.stderr[-2000:]


def test_missing_config_file_is_named_alone(tmp_path):
  proc = _run("vqa_jax.main", "--config=configs/nope.py:a,b", f"--workdir={tmp_path}")
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert proc.stderr.startswith("--config=configs/nope.py:a,b: no such file, and no shipped "
                                "config of that name (shipped: demo, ")


def test_unknown_config_name_suggests_the_closest_and_lists_the_names(tmp_path):
  proc = _run("vqa_jax.main", "--config=smok", f"--workdir={tmp_path}", "--config.train.steps=3")
  from vqa_jax.config import config_files  # pylint: disable=import-outside-toplevel
  assert_usage_error(proc, "--config=smok: no such file, and no shipped config of that name; did "
                     f"you mean 'smoke'? (shipped: {', '.join(config_files.names())})")


def test_config_override_typo_is_one_line_with_the_suggestion(tmp_path):
  proc = _run("vqa_jax.main", "--config=configs/smoke.py", f"--workdir={tmp_path / 'w'}",
              "--config.train.stepz=5")
  assert_usage_error(proc, "--config.train.stepz: config has no field 'train.stepz'; did you mean "
                     "'train.steps'?")
  assert not (tmp_path / "w").exists()


_SLOW = pytest.mark.slow  # the same shared entry point; each program's run costs ~4 s


@pytest.mark.parametrize("program", ["vqa_jax.score", pytest.param("vqa_jax.export", marks=_SLOW),
                                     pytest.param("vqa_jax.landscape", marks=_SLOW)])
def test_config_override_typo_in_every_program(tmp_path, program):
  proc = _run(program, "--config=smoke", "--config.sampling.gird=3", f"--checkpoint={tmp_path}",
              f"--out={tmp_path / 'out'}")
  assert_usage_error(proc, "--config.sampling.gird: config has no field 'sampling.gird'; did you "
                     "mean 'sampling.grid'?")


def test_a_bad_flag_value_is_a_usage_error(tmp_path):
  proc = _run("vqa_jax.main", "--config=smoke", f"--workdir={tmp_path}",
              "--config.train.steps=abc")
  assert_usage_error(proc, "flag --config.train.steps=abc: invalid literal for int() with base "
                     "10: 'abc'")


def test_a_program_usage_error_is_one_line_not_absl_usage(tmp_path):
  """A program's own app.UsageError (score given no video) is one line and exit 2, like the rest
  (absl alone prints the module docstring and every flag, exit 1)."""
  proc = _run("vqa_jax.score", f"--checkpoint={tmp_path}")
  assert_usage_error(proc, "give at least one video file or folder")


def test_workdir_that_is_a_file(tmp_path):
  afile = tmp_path / "afile"
  afile.write_text("x")
  proc = _run("vqa_jax.main", "--config=smoke", f"--workdir={afile}")
  assert_usage_error(proc, f"--workdir={afile}: is a file, not a folder")
  proc = _run("vqa_jax.main", "--config=smoke", f"--workdir={afile}/run")
  assert_usage_error(proc, f"--workdir={afile}/run: {afile}: is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders "
                    "(test_usage_errors::test_an_unwritable_folder_is_named_with_the_os_reason)")
def test_read_only_workdir(tmp_path):
  workdir = tmp_path / "ro"
  workdir.mkdir()
  workdir.chmod(0o500)
  try:
    proc = _run("vqa_jax.main", "--config=smoke", f"--workdir={workdir}")
  finally:
    workdir.chmod(0o700)
  assert_usage_error(proc, f"--workdir={workdir}: cannot write (Permission denied)")


@pytest.mark.parametrize("program,flag", [
    ("vqa_jax.score", "checkpoint"), pytest.param("vqa_jax.landscape", "checkpoint", marks=_SLOW),
    pytest.param("vqa_jax.export", "checkpoint", marks=_SLOW), ("vqa_jax.finetune", "workdir")])
def test_missing_checkpoint_without_config(tmp_path, program, flag):
  missing = tmp_path / "nope"
  extra = {"vqa_jax.score": [str(tmp_path)], "vqa_jax.landscape": [f"--out={tmp_path / 'o'}"],
           "vqa_jax.export": [f"--out={tmp_path / 'o'}"], "vqa_jax.finetune": []}[program]
  proc = _run(program, f"--{flag}={missing}", *extra)
  assert_usage_error(proc, f"--{flag}={missing}: does not exist")


def test_export_out_problems_are_named_before_the_checkpoint_is_read(tmp_path):
  afile = tmp_path / "afile"
  afile.write_text("x")
  missing = tmp_path / "no_checkpoint"  # never reached: --out is checked first
  proc = _run("vqa_jax.export", "--config=smoke", f"--checkpoint={missing}", f"--out={afile}")
  assert_usage_error(proc, f"--out={afile}: is a file, not a folder")
  earlier = tmp_path / "earlier"
  (earlier / "saved_model").mkdir(parents=True)
  (earlier / "export.json").write_text("{}")
  proc = _run("vqa_jax.export", "--config=smoke", f"--checkpoint={missing}", f"--out={earlier}")
  assert_usage_error(proc, f"--out={earlier}: holds files (export.json, saved_model); pass "
                     "--overwrite to replace the folder whole")
  assert sorted(os.listdir(earlier)) == ["export.json", "saved_model"]  # untouched


@pytest.mark.parametrize("command", [["vqa_jax.main"], ["vqa_jax.command", "train"]])
def test_train_help_exits_0_with_the_usage_and_flags(command):
  proc = _run(*command, "--help")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.startswith("Trains and evaluates a model: `python -m vqa_jax.main "
                                "--config=NAME_OR_FILE --workdir=DIR`.")
  assert "Exit status: 0 the run finished; 1 an error" in proc.stdout
  assert "--workdir:" in proc.stdout and "--[no]print_config:" in proc.stdout
  assert "Thin on purpose" not in proc.stdout  # implementation notes stay in the source


def _enospc_shim(tmp_path):
  """tests/enospc_shim.c compiled to a shared library in tmp_path (skips without a C compiler)."""
  compiler = shutil.which("cc") or shutil.which("gcc")
  if compiler is None:
    pytest.skip("no C compiler for the ENOSPC shim")
  library = tmp_path / "enospc.so"
  subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library),
                  str(REPO_ROOT / "tests" / "enospc_shim.c"), "-ldl"], check=True, timeout=120)
  return library


@pytest.mark.slow  # ~30 s: a smoke run under an LD_PRELOAD full disk (test_orbax_noise: in-process)
def test_disk_full_prints_the_real_error_last_without_orbax_noise(tmp_path, env):
  # The checkpoints' folder fills after 2.5 MB: a few checkpoints (~0.6 MB each) fit, a later one does
  # not. Every write after that fails with ENOSPC, in Python and in tensorstore alike.
  workdir = tmp_path / "work"
  env = dict(env, LD_PRELOAD=str(_enospc_shim(tmp_path)), ENOSPC_DIR=str(workdir / "checkpoints"),
             ENOSPC_AFTER_BYTES="2500000")
  proc = subprocess.run(
      [sys.executable, "-m", "vqa_jax.main", "--config=configs/smoke.py", f"--workdir={workdir}",
       "--config.train.steps=30", "--config.train.checkpoint_every=2"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 1
  finished = sorted(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())
  assert finished, proc.stderr[-3000:]
  assert set(saved_params(str(workdir))) == {"params", "ema_params"}  # restorable
  stderr = proc.stderr
  (workdir.parent / "stderr.txt").write_text(stderr)  # kept for a failure's diagnosis
  lines = stderr.strip().splitlines()
  # The error reaches the run from tensorstore (ValueError: RESOURCE_EXHAUSTED ... No space left on
  # device) or from orbax's Python writes (OSError: [Errno 28] ...), whichever fails first.
  error = re.fullmatch(r"(ValueError|OSError): .*No space left on device.*", lines[-1])
  assert error, lines[-5:]
  assert (f"stopped by {error.group(1)}; newest checkpoint in {workdir / 'checkpoints'}: "
          f"step {finished[-1]}") in stderr, stderr[-5000:]
  assert stderr.count("Traceback") == 1, stderr[-5000:]  # the run's own error, nothing after it
  for noise in ("Event loop is closed", "Task exception was never retrieved",
                "sys.meta_path is None", "Exception ignored"):
    assert noise not in stderr, stderr[-5000:]
  assert len(lines) < 200, len(lines)  # ~870 before, with orbax's tracebacks and asyncio's
