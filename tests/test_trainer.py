"""End to end on the smoke config: periodic evaluation, selection, logs, SIGTERM and resume."""

import contextlib
import io
import json
import math
import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from tests.helpers import assert_trees_equal
from tests.helpers import learning_scalars
from tests.helpers import load_config
from tests.helpers import saved_params
from tests.helpers import truncate_data_files
from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.training import checkpointing
from vqa_jax.config import validation
from vqa_jax.training import run_log
from vqa_jax.families import losses
from vqa_jax.convert import pretrained
from vqa_jax.config import run_config
from vqa_jax.training import run_lock
from vqa_jax.training import train_step
from vqa_jax.training import trainer
from vqa_jax.data.labels import Entry
from vqa_jax.models import fast_vqa as model_lib

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.mark.parametrize("name", ["demo", "smoke"])
def test_configs_validate(name):
  validation.validate(load_config(name))


def selection_config():
  """The smoke config with a held-out validation split, evaluated every 2 of its 6 steps."""
  config = load_config("smoke")
  config.data.val_split = "val"
  config.data.val_fraction = 0.25  # 4 of the 16 training videos
  config.train.eval_every = 2
  config.eval.report_best_per_metric = True
  return config


def counted(calls: dict, name: str, fn):
  """`fn` that also counts its calls in calls[name]."""

  def wrapper(*args, **kwargs):
    calls[name] += 1
    return fn(*args, **kwargs)

  return wrapper


@pytest.fixture(scope="module")
def run_calls():
  """{function: calls during smoke_run's run} of what a run should do once (smoke_run fills it)."""
  return dict.fromkeys(("validate", "resolve_schedule", "PerturbConfig.from_config",
                        "families.build"), 0)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, run_calls):
  """One uninterrupted selection_config() run: (workdir, results, printed lines)."""
  root = tmp_path_factory.mktemp("smoke")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("VQA_JAX_CACHE", str(root / "cache"))
    for module, name, key in ((validation, "validate", "validate"),
                              (validation, "resolve_schedule", "resolve_schedule"),
                              (families, "build", "families.build")):
      patch.setattr(module, name, counted(run_calls, key, getattr(module, name)))
    patch.setattr(perturb_config.PerturbConfig, "from_config", classmethod(counted(
        run_calls, "PerturbConfig.from_config", perturb_config.PerturbConfig.from_config.__func__)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      results = trainer.train(selection_config(), str(root / "work"))
  return str(root / "work"), results, out.getvalue().strip().splitlines()


def test_results_tables_and_json_line(smoke_run):
  workdir, results, printed = smoke_run
  assert set(results) == {"test", "cross"}
  for by_model in results.values():
    assert set(by_model) == {"raw", "ema"}
    for m in by_model.values():
      assert set(m) == {"srcc", "plcc", "krcc", "rmse", "plcc_logistic", "rmse_logistic"}
      assert all(math.isfinite(v) for v in m.values())
      assert -1 <= m["srcc"] <= 1 and m["rmse"] > 0
  assert printed[0].startswith("selected checkpoint: step ")
  assert printed[0].endswith("model ema, best val srcc+plcc")
  assert "reference-style best" in "\n".join(printed)
  assert "final checkpoint: step 6" in printed
  line = json.loads(printed[-1])
  assert line["step"] == 6 and line["results"] == results
  assert set(line["selected"]["results"]) == {"test", "cross"}
  assert set(line["reference_best"]) == {"test", "cross"}


def test_a_run_validates_its_config_and_builds_its_parts_once(smoke_run, run_calls):
  assert run_calls == {"validate": 1, "resolve_schedule": 1, "PerturbConfig.from_config": 1,
                       "families.build": 1}


def test_evaluations_selection_and_best_checkpoint(smoke_run):
  workdir, results, printed = smoke_run
  evals = run_log.read_jsonl(os.path.join(workdir, "evals.jsonl"))
  assert [r["step"] for r in evals] == [2, 4, 6]
  for r in evals:
    assert set(r["results"]) == {"val", "test", "cross"}
  assert evals[-1]["results"]["test"] == results["test"]
  # The selected evaluation is the one with the highest val SRCC + PLCC of the EMA model.
  scores = [r["results"]["val"]["ema"]["srcc"] + r["results"]["val"]["ema"]["plcc"] for r in evals]
  chosen = evals[int(np.argmax(scores))]
  selected = json.loads(printed[-1])["selected"]
  assert selected["step"] == chosen["step"]
  assert selected["results"]["test"]["ema"] == chosen["results"]["test"]["ema"]
  assert os.listdir(os.path.join(workdir, "best", "checkpoints")) == [str(chosen["step"])]
  # <workdir>/best loads like a workdir (e.g. to initialise fine-tuning from the selected state).
  best_ema = pretrained.load_params(os.path.join(workdir, "best"), use_ema=True)
  assert set(best_ema) == {"backbone", "head"}
  # Reference-style best: per metric over the three evaluations.
  best = json.loads(printed[-1])["reference_best"]
  assert best["cross"]["raw"]["srcc"] == max(r["results"]["cross"]["raw"]["srcc"] for r in evals)
  assert best["cross"]["raw"]["rmse"] == min(r["results"]["cross"]["raw"]["rmse"] for r in evals)


def test_training_log_and_tensorboard_events(smoke_run):
  workdir, _, _ = smoke_run
  logged = run_log.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in logged] == [2, 4, 6]
  for r in logged:
    assert math.isfinite(r["loss"]) and r["perturbation_norm"] > 0
    assert r["loss_gap"] == pytest.approx(r["perturbed_loss"] - r["loss"])
    for key in ("grad_norm", "clean_grad_norm", "param_norm", "lr_head", "lr_backbone"):
      assert math.isfinite(r[key])
    # Input accounting per log interval: a fraction of the wall time, and clips/s = the interval's
    # clips (2 steps x batch 8 x 1 clip) over its wall time = batch 8 / step time.
    assert 0.0 <= r["input_wait_fraction"] <= 1.0
    assert r["step_time_s"] > 0
    assert r["clips_per_s"] == pytest.approx(8 / r["step_time_s"])
  # Smoke schedule: warmup 2, cosine 6, lr 1e-3; step 2's update used f(1) = 1/2.
  assert logged[0]["lr_head"] == pytest.approx(0.5e-3)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["3", "6"]

  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (tests may use TF)
  events = [os.path.join(dp, f) for dp, _, files in os.walk(os.path.join(workdir, "tensorboard"))
            for f in files if "tfevents" in f]
  assert events
  scalars = {}
  for path in events:
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        scalars.setdefault(value.tag, {})[event.step] = float(
            tf.make_ndarray(value.tensor) if value.HasField("tensor") else value.simple_value)
  assert scalars["train/loss"] == pytest.approx({r["step"]: r["loss"] for r in logged})
  assert set(scalars["eval/val/ema/srcc"]) == {2, 4, 6}
  assert scalars["train/input_wait_fraction"] == pytest.approx(
      {r["step"]: r["input_wait_fraction"] for r in logged})


def batches_then(original, at_step, action):
  """A train_batches that calls `action()` when the batch of `at_step` is asked for."""

  def batches(config, entries, mesh, start_step=0, bad_videos=None, motion=None):
    for step, item in enumerate(original(config, entries, mesh, start_step, bad_videos, motion),
                                start=start_step + 1):
      if step == at_step:
        action()
      yield item

  return batches


def finished_steps(workdir):
  """Every entry of <workdir>/checkpoints (an unfinished save shows as N.orbax-checkpoint-tmp)."""
  return sorted(os.listdir(os.path.join(workdir, "checkpoints")))


# SIGTERM while step 2 runs; SIGINT (Ctrl-C) at step 4, right after step 3's asynchronous save.
# The SIGTERM case is slow-marked to keep the default suite near 10 minutes: SIGTERM's exit status
# is checked by test_exit_paths and its bit-identical resume by test_resume_kill (slow) too.
@pytest.mark.parametrize("sig,at_step,saved", [
    pytest.param(signal.SIGTERM, 2, ["2"], marks=pytest.mark.slow),
    (signal.SIGINT, 4, ["3", "4"])])
def test_signal_checkpoints_and_resume_is_bit_identical(smoke_run, tmp_path, monkeypatch, sig,
                                                        at_step, saved):
  reference_dir, reference_results, _ = smoke_run
  monkeypatch.setenv("VQA_JAX_CACHE", os.path.join(os.path.dirname(reference_dir), "cache"))
  workdir = str(tmp_path / "work")
  original = trainer.train_batches
  handler_before = signal.getsignal(sig)
  monkeypatch.setattr(trainer, "train_batches", batches_then(
      original, at_step, lambda: os.kill(os.getpid(), sig)))  # arrives while the step runs
  with pytest.raises(trainer.Interrupted, match=f"interrupted by {sig.name}") as interrupted:
    trainer.train(selection_config(), workdir)
  assert interrupted.value.step == at_step
  assert finished_steps(workdir) == saved
  assert signal.getsignal(sig) is handler_before  # handler removed again

  monkeypatch.setattr(trainer, "train_batches", original)
  results = trainer.train(selection_config(), workdir)
  # Same seed, same metrics: the resumed run reproduces the uninterrupted one bit for bit (params,
  # training scalars, every metric, the logistic fit's included: see metrics.fit_logistic).
  resumed, reference = saved_params(workdir), saved_params(reference_dir)
  assert_trees_equal(resumed, reference)
  assert (learning_scalars(os.path.join(workdir, "metrics.jsonl"))
          == learning_scalars(os.path.join(reference_dir, "metrics.jsonl")))
  evals = run_log.read_jsonl(os.path.join(workdir, "evals.jsonl"))
  reference_evals = run_log.read_jsonl(os.path.join(reference_dir, "evals.jsonl"))
  assert [r["step"] for r in evals] == [r["step"] for r in reference_evals] == [2, 4, 6]
  for record, reference_record in zip(evals + [{"results": results}],
                                      reference_evals + [{"results": reference_results}]):
    flat = run_log.flatten_results(record["results"], "")
    assert flat == run_log.flatten_results(reference_record["results"], ""), record.get("step")


def test_signal_during_a_log_step_is_saved_at_the_next_step_it_names(smoke_run, tmp_path,
                                                                      monkeypatch):
  reference_dir, _, _ = smoke_run
  monkeypatch.setenv("VQA_JAX_CACHE", os.path.join(os.path.dirname(reference_dir), "cache"))
  workdir = str(tmp_path / "work")
  original = trainer.train_scalars

  def scalars_then_sigterm(config, step, metrics):
    if step == 4:  # logged (log_every 2) but not saved (checkpoint_every 3)
      os.kill(os.getpid(), signal.SIGTERM)
    return original(config, step, metrics)

  monkeypatch.setattr(trainer, "train_scalars", scalars_then_sigterm)
  with pytest.raises(trainer.Interrupted, match="checkpoint saved at step 5"):
    trainer.train(selection_config(), workdir)
  assert finished_steps(workdir) == ["3", "5"]


def test_error_right_after_an_async_save_leaves_that_step_restorable(smoke_run, tmp_path,
                                                                     monkeypatch):
  reference_dir, _, _ = smoke_run
  monkeypatch.setenv("VQA_JAX_CACHE", os.path.join(os.path.dirname(reference_dir), "cache"))
  workdir = str(tmp_path / "work")

  def fail():
    raise RuntimeError("decode error in the batch of step 4")

  monkeypatch.setattr(trainer, "train_batches", batches_then(trainer.train_batches, 4, fail))
  with pytest.raises(RuntimeError, match="decode error in the batch of step 4"):
    trainer.train(selection_config(), workdir)
  assert finished_steps(workdir) == ["3"]  # step 3's save, started just before, completed
  manager = checkpointing.checkpoint_manager(workdir)
  with checkpointing.finishing(manager):
    assert manager.restore(3, args=ocp.args.StandardRestore())["step"] == 3
  assert not os.path.exists(os.path.join(workdir, "run.lock"))  # released


def test_truncated_latest_checkpoint_falls_back_and_resumes_bit_identically(smoke_run, tmp_path,
                                                                             monkeypatch):
  reference_dir, _, _ = smoke_run
  monkeypatch.setenv("VQA_JAX_CACHE", os.path.join(os.path.dirname(reference_dir), "cache"))
  workdir = str(tmp_path / "work")
  shutil.copytree(reference_dir, workdir)
  truncate_data_files(os.path.join(workdir, "checkpoints", "6"))
  trainer.train(selection_config(), workdir)  # resumes from step 3, trains steps 4-6 again
  [aside] = os.listdir(os.path.join(workdir, checkpointing.UNREADABLE_SUBDIR))
  assert aside.startswith("6-")
  assert_trees_equal(saved_params(workdir), saved_params(reference_dir))


def test_rerunning_a_finished_run_keeps_one_final_row(smoke_run, tmp_path, monkeypatch):
  reference_dir, reference_results, _ = smoke_run
  monkeypatch.setenv("VQA_JAX_CACHE", os.path.join(os.path.dirname(reference_dir), "cache"))
  workdir = str(tmp_path / "work")
  shutil.copytree(reference_dir, workdir)
  [row] = run_log.read_jsonl(os.path.join(workdir, "results.jsonl"))
  assert row["step"] == 6 and row["results"] == reference_results
  with contextlib.redirect_stdout(io.StringIO()):
    assert trainer.train(selection_config(), workdir) == reference_results  # nothing left to train
  assert run_log.read_jsonl(os.path.join(workdir, "results.jsonl")) == [row]


def test_second_run_on_a_locked_workdir_fails_at_once(tmp_path, monkeypatch):
  monkeypatch.setattr(trainer, "init_state", None)  # never reached: no model is built
  with run_lock.WorkdirLock(str(tmp_path)):
    with pytest.raises(run_lock.WorkdirLocked, match=f"in use by pid {os.getpid()}"):
      trainer.run(selection_config(), str(tmp_path), {})


def test_resume_with_another_learning_rate_fails_listing_it(smoke_run, tmp_path, monkeypatch):
  reference_dir, _, _ = smoke_run
  workdir = str(tmp_path / "work")
  shutil.copytree(reference_dir, workdir)
  monkeypatch.setattr(trainer, "init_state", None)  # never reached: no model is built
  config = selection_config()
  config.train.learning_rate = 0.5
  with pytest.raises(run_config.ConfigMismatch, match=r"train\.learning_rate: 0\.001 -> 0\.5"):
    trainer.run(config, workdir, {})


def test_an_every_k_reuse_step_logs_no_clean_grad_norm_and_no_loss_gap():
  """A reuse step (`recomputed` 0) ran no clean pass: its clean_grad_norm (0) and loss gap (its loss
  is the perturbed one) are left out; a recomputing step logs both."""
  config = load_config("smoke")
  reuse = {"loss": 2.0, "perturbed_loss": 2.0, "clean_grad_norm": 0.0, "grad_norm": 1.0,
           "recomputed": 0.0}
  fresh = {**reuse, "loss": 1.5, "clean_grad_norm": 0.7, "recomputed": 1.0}
  as_arrays = lambda m: {k: jnp.float32(v) for k, v in m.items()}
  reuse_scalars = trainer.train_scalars(config, 2, as_arrays(reuse))
  assert "clean_grad_norm" not in reuse_scalars and "loss_gap" not in reuse_scalars
  assert reuse_scalars["grad_norm"] == 1.0 and reuse_scalars["loss"] == 2.0
  fresh_scalars = trainer.train_scalars(config, 3, as_arrays(fresh))
  assert fresh_scalars["clean_grad_norm"] == pytest.approx(0.7)
  assert fresh_scalars["loss_gap"] == pytest.approx(0.5)


def test_non_finite_loss_names_the_step_and_its_videos():
  entries = [Entry(f"/videos/v{i}.mp4", 1.0) for i in range(4)]
  check = trainer.FiniteCheck(entries)
  check.push(1, {"loss": jnp.float32(0.5), "perturbed_loss": jnp.float32(0.6)}, np.array([0, 1]))
  check.push(2, {"loss": jnp.float32(0.4), "perturbed_loss": jnp.float32(np.inf)},
             np.array([3, 2]))
  with pytest.raises(FloatingPointError, match=r"at step 2; batch videos: \['/videos/v3.mp4', "
                     r"'/videos/v2.mp4'\]"):
    check.flush()
  check.push(3, {"loss": jnp.float32(np.nan)}, np.array([1]))
  with pytest.raises(FloatingPointError, match="'loss': nan.* at step 3"):
    check.push(4, {"loss": jnp.float32(0.1)}, np.array([0]))  # checks step 3 one step behind


def test_validation_is_held_out_of_training_deterministically():
  config = selection_config()
  entries = [Entry(f"v{i}", float(i)) for i in range(16)]
  splits = trainer.prepare_splits(config, {"train": entries, "test": [], "cross": []})
  assert len(splits["train"]) == 12 and len(splits["val"]) == 4
  assert sorted(splits["train"] + splits["val"], key=lambda e: e.mos) == entries
  assert trainer.prepare_splits(config, {"train": entries, "test": [], "cross": []}) == splits
  config.data.eval_splits = ("test", "lsvq")
  with pytest.raises(ValueError, match=r"\['lsvq'\] not in the data source"):
    trainer.prepare_splits(config, {"train": entries, "test": [], "cross": []})


def test_selection_never_uses_a_test_set():
  config = selection_config()
  config.data.val_split = "test"
  with pytest.raises(ValueError, match="must not look at a test set"):
    validation.validate(config)


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
  step = jax.jit(train_step.make_train_step(losses.make_loss_fn(model, 0.3), tx,
                                            train_step.PerturbConfig("awp", 1e-3), 0.9))
  state = train_step.create_train_state(params, tx)
  step_losses = []
  for _ in range(25):
    state, metrics = step(state, batch, jax.random.key(1))
    step_losses.append(float(metrics["loss"]))
  assert np.mean(step_losses[-5:]) < 0.5 * np.mean(step_losses[:5])
