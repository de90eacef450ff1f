"""The grain loader: the tf.data loader's batches bit for bit, and the main job without TensorFlow."""

import os
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest
from tests.helpers import REPO_ROOT
from tests.helpers import assert_trees_equal
from tests.helpers import checkpoint_steps
from tests.helpers import learning_scalars
from tests.helpers import load_config
from tests.helpers import saved_params
from tests.video_files import mixed_entries

from vqa_jax.training import run_log
from vqa_jax.training import trainer
from vqa_jax.data import element_plan
from vqa_jax.data import loaders
from vqa_jax.data import video_io
from vqa_jax.data.labels import Entry

SAMPLING = ml_collections.ConfigDict({"clip_len": 4, "frame_interval": 2, "grid": 2, "patch": 8})


def load_all(plan_fn, loader, workers=2):
  """(all batches, bad-video reasons) of a fresh plan read by `loader`."""
  plan = plan_fn()
  return list(loaders.batches(plan, loader, workers)), plan.bad_videos.reasons


PLANS = {
    "train_from_0": lambda entries, **kw: element_plan.train_plan(
        entries, SAMPLING, 3, seed=3, num_steps=7, on_bad_video="skip", **kw),
    "train_from_4": lambda entries, **kw: element_plan.train_plan(
        entries, SAMPLING, 3, seed=3, num_steps=7, start_step=4, on_bad_video="skip", **kw),
    "eval": lambda entries, **kw: element_plan.eval_plan(
        entries, SAMPLING, 4, num_clips=2, on_bad_video="skip", **kw),
    "train_host_1_of_2": lambda entries, **kw: element_plan.train_plan(
        entries, SAMPLING, 4, seed=3, num_steps=5, on_bad_video="skip", process_index=1,
        process_count=2, **kw),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_loaders_yield_bit_identical_batches_and_skip_counts(good_and_bad_videos, name):
  entries, bad_indices = mixed_entries(good_and_bad_videos)
  make = lambda: PLANS[name](entries)
  tf_batches, tf_bad = load_all(make, "tf_data")
  grain_batches, grain_bad = load_all(make, "grain")
  in_process, _ = load_all(make, "grain", workers=0)
  assert len(tf_batches) == len(grain_batches) == len(in_process) == make().positions.shape[0]
  for tf_batch, grain_batch, local_batch in zip(tf_batches, grain_batches, in_process):
    assert sorted(tf_batch) == sorted(grain_batch) == sorted(local_batch)
    for key in tf_batch:
      assert tf_batch[key].dtype == grain_batch[key].dtype
      np.testing.assert_array_equal(tf_batch[key], grain_batch[key])
      np.testing.assert_array_equal(tf_batch[key], local_batch[key])
  # Every bad video the stream reaches is skipped and counted, with the same reason, by both.
  assert tf_bad == grain_bad
  seen = {int(i) for b in tf_batches for i in b["index"]}
  assert not seen & bad_indices or name == "eval"
  assert set(tf_bad) <= {entries[i].path for i in bad_indices} and tf_bad


@pytest.mark.parametrize("loader", ["tf_data", "grain"])
def test_error_policy_names_the_file_in_both_loaders(good_and_bad_videos, loader):
  good, bad = good_and_bad_videos
  plan = element_plan.train_plan(good[:2] + [Entry(bad["text"], 1.0)], SAMPLING, 3,
                             seed=0, num_steps=2)
  with pytest.raises(video_io.VideoDecodeError, match="cannot open") as e:
    list(loaders.batches(plan, loader, 2))
  assert e.value.path == bad["text"]


def test_unknown_loader_is_rejected(good_and_bad_videos):
  plan = element_plan.eval_plan(good_and_bad_videos[0], SAMPLING, 4, 1)
  with pytest.raises(ValueError, match="data.loader must be one of"):
    loaders.batches(plan, "torch")


# The main job with the grain loader where `import tensorflow` fails (as on the GPU machine).
OVERRIDES = ["--config.train.steps=8", "--config.train.cosine_steps=8",
             "--config.train.checkpoint_every=2", "--config.train.eval_every=4",
             "--config.data.workers=2"]


def apply_overrides(config):
  """The smoke config with OVERRIDES applied (what the flags do in the subprocess)."""
  for flag in OVERRIDES:
    key, value = flag.removeprefix("--config.").split("=")
    section, field = key.split(".")
    config[section][field] = int(value)
  return config


def children(pid):
  """The pids whose parent is `pid` (from /proc)."""
  found = []
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
          fields = f.read().rsplit(")", 1)[1].split()
      except OSError:
        continue
      if int(fields[1]) == pid:
        found.append(int(entry))
  return found


def alive(pid):
  """Whether `pid` exists and is not a zombie."""
  try:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


@pytest.mark.usefixtures("fast_compile")
@pytest.mark.integration
def test_grain_main_job_without_tensorflow_killed_and_resumed_equals_tf_data_run(tmp_path):
  blocker = tmp_path / "blocker" / "tensorflow"
  blocker.mkdir(parents=True)
  (blocker / "__init__.py").write_text("raise ImportError('tensorflow is blocked in this test')\n")
  cache = str(tmp_path / "cache")
  env = dict(os.environ, VQA_JAX_CACHE=cache, JAX_DISABLE_MOST_OPTIMIZATIONS="true",
             PYTHONPATH=os.pathsep.join([str(tmp_path / "blocker"), str(REPO_ROOT)]))
  grain_dir, tf_dir = str(tmp_path / "grain"), str(tmp_path / "tf_data")
  command = [sys.executable, "-m", "vqa_jax.main", "--config=configs/smoke.py",
             "--config.data.loader=grain", *OVERRIDES, f"--workdir={grain_dir}"]
  check = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True,
                         text=True, check=False)
  assert "tensorflow is blocked" in check.stderr

  # Killed with SIGKILL once its first checkpoint is final; its decode workers go with it.
  proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 300
  while not checkpoint_steps(grain_dir):
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.monotonic() < deadline
    time.sleep(0.01)
  workers = children(proc.pid)
  proc.send_signal(signal.SIGKILL)
  proc.communicate(timeout=60)
  killed_at = max(checkpoint_steps(grain_dir))
  assert killed_at < 8
  deadline = time.monotonic() + 20
  while any(alive(p) for p in workers) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not any(alive(p) for p in workers), "grain workers outlived the killed trainer"

  resumed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from" in resumed.stderr and f"at step {killed_at}" in resumed.stderr

  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("VQA_JAX_CACHE", cache)
    trainer.train(apply_overrides(load_config("smoke")), tf_dir)
  assert_trees_equal(saved_params(grain_dir), saved_params(tf_dir))
  assert (learning_scalars(os.path.join(grain_dir, "metrics.jsonl"))
          == learning_scalars(os.path.join(tf_dir, "metrics.jsonl")))
  grain_final = run_log.read_jsonl(os.path.join(grain_dir, "results.jsonl"))[-1]
  tf_final = run_log.read_jsonl(os.path.join(tf_dir, "results.jsonl"))[-1]
  assert grain_final["step"] == tf_final["step"] == 8
  for split, by_model in tf_final["results"].items():
    for model, values in by_model.items():
      assert grain_final["results"][split][model] == pytest.approx(values, rel=1e-6, abs=1e-9)
