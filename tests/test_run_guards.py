"""A run guards its workdir: the lock, stored config, checkpoint fallback and finishing, signals."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.helpers import truncate_data_files
from vqa_jax.training import checkpointing
from vqa_jax.training import interrupts
from vqa_jax.config import run_config
from vqa_jax.training import run_lock
from vqa_jax.training import run_log


# ---- run_lock


def write_lock(workdir, pid, host, age_s=0.0, **fields):
  """A lock file of another holder whose heartbeat is `age_s` seconds old (`fields`: boot id...)."""
  path = run_lock.lock_path(str(workdir))
  with open(path, "w", encoding="utf-8") as f:
    json.dump({"pid": pid, "host": host, "started": time.time() - age_s, **fields}, f)
  os.utime(path, (time.time() - age_s, time.time() - age_s))
  return path


def dead_pid():
  """The pid of a process that has exited."""
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def test_second_lock_on_a_workdir_fails_naming_the_holder(tmp_path):
  with run_lock.WorkdirLock(str(tmp_path)) as held:
    assert run_lock.read_holder(held.path)["pid"] == os.getpid()
    with pytest.raises(run_lock.WorkdirLocked,
                       match=rf"in use by pid {os.getpid()} on host {socket.gethostname()}"):
      run_lock.WorkdirLock(str(tmp_path)).acquire()
  assert not os.path.exists(run_lock.lock_path(str(tmp_path)))  # released


def test_stale_locks_are_taken_over_live_ones_elsewhere_are_not(tmp_path):
  write_lock(tmp_path, dead_pid(), socket.gethostname())  # same host, process gone
  with run_lock.WorkdirLock(str(tmp_path)) as held:
    assert run_lock.read_holder(held.path)["pid"] == os.getpid()
  write_lock(tmp_path, 12345, "other-node", age_s=10)  # other host, fresh heartbeat: alive
  with pytest.raises(run_lock.WorkdirLocked, match="pid 12345 on host other-node"):
    run_lock.WorkdirLock(str(tmp_path), stale_after_s=60).acquire()
  write_lock(tmp_path, 12345, "other-node", age_s=120)  # its heartbeat stopped 2 minutes ago
  with run_lock.WorkdirLock(str(tmp_path), stale_after_s=60):
    pass


def test_heartbeat_touches_the_lock_and_release_leaves_a_foreign_lock(tmp_path):
  lock = run_lock.WorkdirLock(str(tmp_path), heartbeat_s=0.05)
  lock.acquire()
  os.utime(lock.path, (0, 0))
  time.sleep(0.3)
  assert time.time() - os.path.getmtime(lock.path) < 5
  write_lock(tmp_path, 12345, "other-node")  # someone replaced it: not ours to remove
  lock.release()
  assert run_lock.read_holder(lock.path)["host"] == "other-node"


OTHER_BOOT = "00000000-0000-4000-8000-000000000000"
OTHER_NAMESPACE = "pid:[1]"  # no real namespace has inode 1


def test_a_lock_records_where_its_pid_lives(tmp_path):
  with run_lock.WorkdirLock(str(tmp_path)) as held:
    record = run_lock.read_holder(held.path)
  with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
    assert record["boot_id"] == f.read().strip()
  assert record["pid_namespace"] == os.readlink("/proc/self/ns/pid")
  assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()


@pytest.mark.parametrize("fields, reason", [
    # The same container restarted: same host name and kernel, new PID namespace.
    ({"pid_namespace": OTHER_NAMESPACE}, r"another PID namespace \(pid:\[1\], this process"),
    ({"boot_id": OTHER_BOOT}, f"earlier boot \\(boot id {OTHER_BOOT}"),  # this host rebooted
    ({}, "is this process's own, which does not hold the lock"),  # an earlier process had our pid
    (None, "is this process's own, which does not hold the lock"),  # the same, an old lock file
], ids=["pid_namespace", "boot", "own_pid", "own_pid_old_file"])
def test_a_fresh_lock_whose_pid_means_nothing_here_is_taken_over_at_once(tmp_path, caplog,
                                                                        fields, reason):
  here = run_lock.this_process()
  where = ({} if fields is None else
           {"boot_id": here["boot_id"], "pid_namespace": here["pid_namespace"], **fields})
  # The holder's pid is this process's own (pid 2 in both containers, say), its heartbeat fresh.
  write_lock(tmp_path, os.getpid(), socket.gethostname(), age_s=1, **where)
  with caplog.at_level("WARNING"):
    with run_lock.WorkdirLock(str(tmp_path)) as held:
      assert run_lock.read_holder(held.path)["token"] == held.record["token"]
  assert "taking over the stale lock" in caplog.text
  assert re.search(reason, caplog.text), caplog.text


def test_a_fresh_lock_of_another_host_is_kept_whatever_its_pid_boot_and_namespace(tmp_path):
  # A live trainer on another node sharing the file system: its pid, boot and namespace are
  # unknowable here; even a pid equal to ours says nothing.
  write_lock(tmp_path, os.getpid(), "other-node", age_s=10, boot_id=OTHER_BOOT,
             pid_namespace=OTHER_NAMESPACE)
  with pytest.raises(run_lock.WorkdirLocked, match=f"pid {os.getpid()} on host other-node"):
    run_lock.WorkdirLock(str(tmp_path), stale_after_s=60).acquire()
  assert run_lock.read_holder(run_lock.lock_path(str(tmp_path)))["host"] == "other-node"


def test_an_old_lock_file_of_a_live_pid_on_this_host_is_kept(tmp_path):
  # Written before boot id and namespace were recorded: the pid is checked as before.
  write_lock(tmp_path, os.getppid(), socket.gethostname(), age_s=1)
  with pytest.raises(run_lock.WorkdirLocked, match=f"in use by pid {os.getppid()}"):
    run_lock.WorkdirLock(str(tmp_path)).acquire()
  here = run_lock.this_process()  # the same with this boot and namespace recorded
  write_lock(tmp_path, os.getppid(), socket.gethostname(), age_s=1, boot_id=here["boot_id"],
             pid_namespace=here["pid_namespace"])
  with pytest.raises(run_lock.WorkdirLocked, match=f"in use by pid {os.getppid()}"):
    run_lock.WorkdirLock(str(tmp_path)).acquire()


# ---- run_config


def small_config():
  """A config with a model section, a learning rate and bookkeeping fields."""
  return ml_collections.ConfigDict({
      "model": {"embed_dim": 16, "depths": (1, 1), "dtype": "float32"},
      "train": {"learning_rate": 1e-3, "steps": 6, "optimizer": "adamw"},
      "perturb": {"kind": "awp", "every_k": 1}, "log": {"tensorboard": True}})


def fake_checkpoint(workdir, step=3):
  """A step folder, enough for the workdir to count as resumable."""
  os.makedirs(os.path.join(workdir, "checkpoints", str(step)))


def test_write_and_read_config_round_trip(tmp_path):
  config = small_config()
  run_config.write_config(str(tmp_path), config)
  stored = run_config.read_config(str(tmp_path))
  assert stored.model.depths == (1, 1) and stored.train.learning_rate == 1e-3  # tuples again
  assert run_config.differences(stored, config) == {}
  assert "embed_dim: 16" in (tmp_path / "config.txt").read_text()
  assert run_config.read_config(str(tmp_path / "none")) is None
  (tmp_path / "config.json").write_text("{oops")
  with pytest.raises(ValueError, match=r"config\.json: not a stored config"):
    run_config.read_config(str(tmp_path))


def test_resume_with_changed_shape_fields_fails_listing_them(tmp_path):
  workdir = str(tmp_path)
  run_config.check_resume(workdir, small_config())
  fake_checkpoint(workdir)
  changed = small_config()
  changed.model.embed_dim = 32
  changed.perturb.every_k = 2
  changed.model.dtype = "bfloat16"  # compute only: not a shape field
  with pytest.raises(run_config.ConfigMismatch) as e:
    run_config.check_resume(workdir, changed, allow_change=True)
  assert "model.embed_dim: 16 -> 32" in str(e.value) and "perturb.every_k: 1 -> 2" in str(e.value)
  assert "model.dtype" not in str(e.value)


def test_resume_with_other_changes_needs_the_flag_and_is_recorded(tmp_path):
  workdir = str(tmp_path)
  run_config.check_resume(workdir, small_config())
  fake_checkpoint(workdir)
  changed = small_config()
  changed.train.learning_rate = 1e-2
  changed.perturb.kind = "none"
  changed.train.steps = 12  # bookkeeping: always accepted
  with pytest.raises(run_config.ConfigMismatch,
                     match=r"(?s)perturb\.kind: 'awp' -> 'none'.*train\.learning_rate: 0\.001 -> "
                           r"0\.01.*--allow_config_change"):
    run_config.check_resume(workdir, changed)
  assert run_config.read_config(workdir).train.learning_rate == 1e-3  # unchanged on failure
  changes = run_config.check_resume(workdir, changed, allow_change=True)
  assert changes == {"perturb.kind": ("awp", "none"), "train.learning_rate": (1e-3, 1e-2),
                     "train.steps": (6, 12)}
  assert run_config.read_config(workdir).train.learning_rate == 1e-2  # stored for the next resume
  record = json.loads((tmp_path / run_config.CHANGES_JSONL).read_text())
  assert record["changes"]["train.learning_rate"] == [1e-3, 1e-2]
  only_steps = small_config()
  only_steps.train.learning_rate, only_steps.perturb.kind, only_steps.train.steps = 1e-2, "none", 20
  assert run_config.check_resume(workdir, only_steps) == {"train.steps": (12, 20)}


def _store_without_perturb_precision(workdir, dtype):
  """A run stored before perturb.precision existed (its config.json lacks the field)."""
  old = small_config()
  old.model.dtype, old.perturb.precision = dtype, "auto"
  run_config.check_resume(workdir, old)
  fake_checkpoint(workdir)
  path = os.path.join(workdir, run_config.CONFIG_JSON)
  with open(path, encoding="utf-8") as f:
    stored = json.load(f)
  del stored["perturb"]["precision"]
  with open(path, "w", encoding="utf-8") as f:
    json.dump(stored, f)
  return old


def test_a_bf16_run_from_before_perturb_precision_resumes_only_as_it_computed(tmp_path):
  """Such a run cast w + δ to bf16; today's default ('auto': a float32 perturbed pass) would
  change its gradients on resume, so that is a reported change, and 'cast' resumes as before."""
  workdir = str(tmp_path)
  today = _store_without_perturb_precision(workdir, "bfloat16")
  assert today.perturb.precision == "auto"
  with pytest.raises(run_config.ConfigMismatch, match=r"perturb\.precision: 'cast' -> 'auto'"):
    run_config.check_resume(workdir, today)
  as_before = today.copy_and_resolve_references()
  as_before.perturb.precision = "cast"
  assert run_config.check_resume(workdir, as_before) == {}


def test_a_float32_run_from_before_perturb_precision_resumes_unchanged(tmp_path):
  workdir = str(tmp_path)
  today = _store_without_perturb_precision(workdir, "float32")
  assert run_config.check_resume(workdir, today) == {}


def test_without_checkpoints_a_new_config_simply_replaces_the_stored_one(tmp_path):
  run_config.check_resume(str(tmp_path), small_config())
  changed = small_config()
  changed.model.embed_dim = 32
  assert run_config.check_resume(str(tmp_path), changed) == {}
  assert run_config.read_config(str(tmp_path)).model.embed_dim == 32


# ---- checkpoint fallback and finishing


def saved_steps(workdir, steps=(3, 6)):
  """Synchronous checkpoints of {'a': step * arange(1000)} at `steps`."""
  manager = checkpointing.checkpoint_manager(workdir, max_to_keep=5, async_save=False)
  for step in steps:
    checkpointing.save(manager, step, {"a": jnp.arange(1000, dtype=jnp.float32) * step},
                       force=True)
  manager.close()


def test_truncated_latest_checkpoint_falls_back_and_is_set_aside(tmp_path, caplog):
  workdir = str(tmp_path)
  saved_steps(workdir)
  truncate_data_files(os.path.join(workdir, "checkpoints", "6"))
  target = {"a": jnp.zeros(1000, jnp.float32)}
  manager = checkpointing.checkpoint_manager(workdir, max_to_keep=5)
  step, state, unreadable = checkpointing.restore_newest_readable(manager, target)
  assert step == 3 and [s for s, _ in unreadable] == [6] and "OUT_OF_RANGE" in unreadable[0][1]
  np.testing.assert_array_equal(state["a"], 3.0 * np.arange(1000))
  assert "checkpoints/6 is unreadable" in caplog.text
  assert manager.all_steps() == [3, 6]  # restore_newest_readable moves nothing (score's use)
  state = checkpointing.restore_latest(manager, target, set_aside_unreadable=True)
  np.testing.assert_array_equal(state["a"], 3.0 * np.arange(1000))
  assert manager.all_steps() == [3]  # so that the resumed run saves step 6 again
  [aside] = os.listdir(os.path.join(workdir, checkpointing.UNREADABLE_SUBDIR))
  assert aside.startswith("6-")
  manager.close()


def test_no_readable_checkpoint_is_an_error_naming_each(tmp_path):
  workdir = str(tmp_path)
  saved_steps(workdir)
  for step in (3, 6):
    truncate_data_files(os.path.join(workdir, "checkpoints", str(step)))
  manager = checkpointing.checkpoint_manager(workdir, max_to_keep=5)
  with pytest.raises(checkpointing.NoReadableCheckpoint,
                     match=r"(?s)checkpoints/6: ValueError: OUT_OF_RANGE.*checkpoints/3: "):
    checkpointing.restore_latest(manager, {"a": jnp.zeros(1000, jnp.float32)},
                                 set_aside_unreadable=True)
  assert manager.all_steps() == [3, 6]  # nothing moved when nothing restores
  manager.close()


def test_finishing_completes_an_async_save_when_the_block_raises(tmp_path):
  manager = checkpointing.checkpoint_manager(str(tmp_path), async_save=True)
  big = {"a": jnp.ones((2000, 1000), jnp.float32)}
  with pytest.raises(RuntimeError, match="decode failed"):
    with checkpointing.finishing(manager, None):
      checkpointing.save(manager, 3, big, force=True)
      raise RuntimeError("decode failed")  # right after the save was started
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3"]  # finalized, no tmp folder
  reader = checkpointing.checkpoint_manager(str(tmp_path))
  np.testing.assert_array_equal(checkpointing.restore_latest(reader, big)["a"], 1.0)
  reader.close()


# ---- signals


def test_sigint_and_sigterm_set_the_flag_then_handlers_come_back():
  previous = signal.getsignal(signal.SIGINT)
  with interrupts.stop_flag() as stop:
    assert not stop.is_set()
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.is_set() and stop.signal_name == "SIGINT"
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.signal_name == "SIGINT"  # the first signal names the interruption
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C insists
  assert signal.getsignal(signal.SIGINT) is previous
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
  assert str(interrupts.Interrupted(4, "SIGINT")) == ("interrupted by SIGINT; checkpoint saved at "
                                                     "step 4")


# ---- run_log.record_result


def test_results_get_one_row_per_step_identical_reruns_write_nothing(tmp_path, caplog):
  path = str(tmp_path / "results.jsonl")
  first = {"step": 6, "results": {"test": {"raw": {"srcc": 0.5}}}}
  assert run_log.record_result(path, first)
  before = os.stat(path).st_mtime_ns, open(path, encoding="utf-8").read()
  assert not run_log.record_result(path, json.loads(json.dumps(first)))  # the rerun's equal row
  assert (os.stat(path).st_mtime_ns, open(path, encoding="utf-8").read()) == before
  longer = {"step": 9, "results": {"test": {"raw": {"srcc": 0.75}}}}  # resumed with more steps
  assert run_log.record_result(path, longer)
  changed = {"step": 6, "results": {"test": {"raw": {"srcc": 0.25}}}}
  with caplog.at_level("WARNING"):
    assert run_log.record_result(path, changed)
  assert "replacing its row(s) of step 6" in caplog.text
  assert run_log.read_jsonl(path) == [longer, changed]
  assert os.listdir(tmp_path) == ["results.jsonl"]  # no temporary file left
