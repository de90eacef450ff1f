"""One training run: data, model, sharded state, the jitted perturbed step, checkpoints, evaluation.

`train(config, workdir)` trains on `data.train_split`, evaluates every `train.eval_every` steps and
after the last step on the validation split (`data.val_split`, if any) and `data.eval_splits`, for
the models in `eval.models`, and returns the final checkpoint's results. With a validation split,
the evaluation with the best validation SRCC + PLCC of `eval.select_model` is the selected one: its
state is kept in `<workdir>/best/checkpoints/` and its test numbers are printed beside the final
ones. A run resumes from the newest checkpoint in `<workdir>/checkpoints/` (state and input
position: the input stream is a function of the step; an unreadable newest checkpoint is set aside
and the newest readable one used), SIGTERM or SIGINT saves a checkpoint at the next step boundary
and raises `Interrupted`, and a non-finite loss stops the run naming the step and its videos.
However the run ends, in-flight checkpoint writes complete first (`checkpointing.finishing`). The
workdir is locked for the run (`run_lock`) and keeps its config (`run_config`: a resumed run must
match it). Without a checkpoint to resume from, `init.checkpoint` gives the initial params (and,
for models with state such as BatchNorm statistics, the initial model state).

The model family (`config.model.name`, see `families`) decides the model, its inputs, loss and
score; everything else here is shared. SimpleVQA's motion features come from `data.motion_dir`.
"""

import contextlib
import os
import time

from absl import logging
import jax
import ml_collections
import numpy as np

from vqa_jax.training import checkpointing
from vqa_jax.config import validation
from vqa_jax.evaluation import evaluate
from vqa_jax import families
from vqa_jax.training import interrupts
from vqa_jax.training import run_log
from vqa_jax.runtime import memory_report
from vqa_jax.runtime import output_folders
from vqa_jax.training import optim
from vqa_jax.config import perturb_config
from vqa_jax import perturb_precision
from vqa_jax.runtime import progress
from vqa_jax.evaluation import report
from vqa_jax.scoring import run_calibration
from vqa_jax.config import run_config
from vqa_jax.training import run_lock
from vqa_jax.training import split_warnings
from vqa_jax.evaluation import selection
from vqa_jax.runtime import sharding
from vqa_jax.training import throughput
from vqa_jax.training import train_step
from vqa_jax.data import element_plan
from vqa_jax.data import loaders
from vqa_jax.data import motion as motion_lib
from vqa_jax.data import nvdec_pipeline
from vqa_jax.data import preflight
from vqa_jax.data import sources
from vqa_jax.data import video_io

Interrupted = interrupts.Interrupted  # what `run` raises on SIGTERM / SIGINT


def init_state(family: families.Family, tx, perturb_cfg: perturb_config.PerturbConfig, seed: int,
               mesh, params=None, model_state=None) -> train_step.TrainState:
  """Initial train state (from `params` / `model_state` if given), created replicated.

  `family` is the run's (`families.build(config)`), `perturb_cfg` its perturbation
  (`PerturbConfig.from_config(config.perturb)`); without `params` the variables are initialised
  from `seed` (the config's).
  """

  def create(key, given_params, given_state):
    if given_params is None:
      given_params, given_state = family.init_variables(key)
    return train_step.create_train_state(given_params, tx, perturb_cfg, given_state)

  return jax.jit(create, out_shardings=sharding.replicated(mesh))(jax.random.key(seed), params,
                                                                  model_state)


def has_init(config: ml_collections.ConfigDict) -> bool:
  """Whether the run starts from given weights (init.checkpoint or init.pretrained)."""
  return bool(config.init.checkpoint or config.init.get("pretrained"))


def init_checkpoint(config: ml_collections.ConfigDict) -> str:
  """The checkpoint a run starts from: init.checkpoint, or the cached conversion of the named
  model init.pretrained for this run's model (fetched and converted first if need be)."""
  if config.init.get("pretrained"):
    from vqa_jax.pretrained import cache  # pylint: disable=g-import-not-at-top
    return cache.ensure(config.init.pretrained, config)
  return config.init.checkpoint


def pretrained_variables(config: ml_collections.ConfigDict, state: train_step.TrainState):
  """(params, model_state) of `init_checkpoint(config)`, checked against `state`'s.

  Models without state read params only (`pretrained.load_params`); models with state read all
  their collections (`pretrained.load_variables`), e.g. ImageNet ResNet-50 weights and BatchNorm
  statistics converted by `vqa_jax.convert_weights --format=resnet50`.
  """
  from vqa_jax.convert import pretrained  # pylint: disable=g-import-not-at-top  (optional module)
  checkpoint = init_checkpoint(config)
  logging.info("initialising from %s (%s params)", checkpoint,
               "EMA" if config.init.use_ema else "raw")
  if state.model_state is None:
    return pretrained.load_params(checkpoint, like=state.params,
                                  use_ema=config.init.use_ema), None
  loaded = dict(pretrained.load_variables(
      checkpoint, like=families.variables(state.params, state.model_state),
      use_ema=config.init.use_ema))
  return loaded.pop("params"), loaded


def motion_features(config: ml_collections.ConfigDict) -> motion_lib.MotionFeatures:
  """The precomputed motion features of `data.motion_dir` (SimpleVQA's `motion` input)."""
  return motion_lib.MotionFeatures(config.data.motion_dir, config.sampling.clip_len,
                                   config.model.motion_dim)


def log_setup(config, mesh, num_params: int, splits: dict) -> None:
  """Versions, mesh and batch layout, parameter count and split sizes."""
  import flax, optax, orbax.checkpoint  # pylint: disable=g-import-not-at-top,multiple-imports
  logging.info("jax %s, flax %s, optax %s, orbax-checkpoint %s; backend %s", jax.__version__,
               flax.__version__, optax.__version__, orbax.checkpoint.__version__,
               jax.default_backend())
  n = mesh.shape[sharding.DATA_AXIS]
  logging.info("mesh %s over %d devices; global batch %d = %d per device; %d processes",
               dict(mesh.shape), n, config.train.batch_size, config.train.batch_size // n,
               jax.process_count())
  logging.info("model: %s parameters; perturbation %s (gamma %g)", f"{num_params:,}",
               config.perturb.kind, config.perturb.gamma)
  logging.info("splits: %s", {k: len(v) for k, v in splits.items()})
  logging.info("%s", optim.describe_schedule(config.train))  # the resolved schedule


def prepare_splits(config: ml_collections.ConfigDict, splits: dict) -> dict:
  """`splits` with the validation split held out of the training split when val_fraction > 0.

  Raises ValueError naming any configured split that does not exist.
  """
  data = config.data
  splits = dict(splits)
  if data.val_fraction:
    if data.val_split in splits:
      raise ValueError(f"data.val_split {data.val_split!r} is held out of the training split but "
                       f"the data source already has a split of that name")
    splits[data.train_split], splits[data.val_split] = selection.shuffled_split(
        splits[data.train_split], 1.0 - data.val_fraction, config.seed)
  wanted = [data.train_split, *data.eval_splits] + ([data.val_split] if data.val_split else [])
  missing = [name for name in wanted if name not in splits]
  if missing:
    raise ValueError(f"split(s) {missing} not in the data source, which has {sorted(splits)}")
  return splits


def used_splits(config: ml_collections.ConfigDict, splits: dict) -> dict:
  """{name: entries} of the splits the run reads: training, validation and the eval splits."""
  names = [config.data.train_split, config.data.val_split, *config.data.eval_splits]
  return {name: splits[name] for name in dict.fromkeys(names) if name}


def training_plan(config: ml_collections.ConfigDict, entries: list, start_step: int = 0,
                  bad_videos: element_plan.BadVideoLog | None = None,
                  motion: motion_lib.MotionFeatures | None = None) -> element_plan.ElementPlan:
  """The elements of the config's training run from `start_step` to `train.steps`."""
  return element_plan.train_plan(entries, config.sampling, config.train.batch_size, seed=config.seed,
                             num_steps=config.train.steps, start_step=start_step,
                             num_clips=config.sampling.num_clips_train,
                             on_bad_video=config.data.on_bad_video, bad_videos=bad_videos,
                             augment=config.data.augment, motion=motion)


def train_batches(config: ml_collections.ConfigDict, entries: list, mesh, start_step: int = 0,
                  bad_videos: element_plan.BadVideoLog | None = None,
                  motion: motion_lib.MotionFeatures | None = None):
  """Yields (host batch, device batch) of the configured training loader from `start_step` on.

  The loader is `data.loader` with `data.workers` decode workers, and NVDEC beside them with
  `data.decoder` 'nvdec' / 'hybrid' (evaluation decodes on the CPU). The device batch holds the
  model inputs (video, and motion when `motion` is given) and labels. Closing the generator stops
  the loader's workers.
  """
  plan = training_plan(config, entries, start_step, bad_videos, motion)
  host_batches = loaders.batches(plan, config.data.loader, config.data.workers,
                                 nvdec_pipeline.Decoding.from_config(config.data))
  try:
    for batch in host_batches:
      yield batch, sharding.shard_batch(
          {**element_plan.model_inputs(batch), "label": batch["label"]}, mesh)
  finally:
    host_batches.close()


def check_finite(step: int, losses_at_step: dict, batch_indices, entries: list) -> None:
  """Raises FloatingPointError naming the step and the batch's videos if a loss is not finite."""
  bad = {k: float(v) for k, v in losses_at_step.items() if not np.isfinite(v)}
  if bad:
    videos = [entries[i].path for i in np.asarray(batch_indices).tolist()]
    raise FloatingPointError(f"non-finite loss {bad} at step {step}; batch videos: {videos}")


class FiniteCheck:
  """Checks each step's losses one step behind, so the host never waits on the step just queued."""

  def __init__(self, entries: list):
    self._entries = entries
    self._pending = None

  def push(self, step: int, metrics: dict, batch_indices) -> None:
    """Checks the previous step, then holds this step's losses (device scalars) for later."""
    self.flush()
    losses_at_step = {k: metrics[k] for k in ("loss", "perturbed_loss") if k in metrics}
    self._pending = (step, losses_at_step, batch_indices)

  def flush(self) -> None:
    """Checks the held step now (waits for it)."""
    if self._pending is not None:
      step, losses_at_step, batch_indices = self._pending
      self._pending = None
      check_finite(step, jax.device_get(losses_at_step), batch_indices, self._entries)


def evaluate_all(state, predict_fn, splits, config, mesh, split_names=None,
                 motion: motion_lib.MotionFeatures | None = None) -> report.Results:
  """Metrics for every split of `split_names` (default: the eval splits) and every eval model.

  `predict_fn(variables, *inputs)` as `families.Family.predict_fn`. The 'ema' model is the EMA
  params with the model state (BatchNorm running statistics) of the raw model, which has no EMA.
  """
  batch_size = evaluate.eval_batch_size(config.eval.batch_size, mesh)
  variables_by_model = {"raw": families.variables(state.params, state.model_state),
                        "ema": families.variables(state.ema_params, state.model_state)}
  models = {model: variables_by_model[model] for model in config.eval.models}
  results = {}
  for name in (config.data.eval_splits if split_names is None else split_names):
    # One decoding pass per split, each batch scored by every model.
    results[name] = evaluate.evaluate_split_models(
        predict_fn, models, splits[name], config.sampling, batch_size,
        config.sampling.num_clips_eval, mesh, config.data.on_bad_video,
        logistic=config.eval.logistic, motion=motion, loader=config.data.loader,
        workers=config.data.workers)
  return results


def is_eval_step(step: int, config: ml_collections.ConfigDict) -> bool:
  """Whether `step` evaluates: every train.eval_every steps and the last step."""
  every = config.train.eval_every
  return step == config.train.steps or (every > 0 and step % every == 0)


def train_scalars(config: ml_collections.ConfigDict, step: int, metrics: dict) -> dict:
  """The logged scalars of a step: its metrics, the learning rates and the perturbed-clean gap.

  An every_k reuse step has no clean pass: no clean_grad_norm and no gap (its loss is perturbed).
  """
  scalars = {k: float(v) for k, v in train_step.logged_metrics(metrics).items()}
  if "perturbed_loss" in scalars and scalars.get("recomputed", 1.0):
    scalars["loss_gap"] = scalars["perturbed_loss"] - scalars["loss"]
  scalars.update(optim.learning_rates(config.train, step - 1))
  return scalars


def log_training(config: ml_collections.ConfigDict, step: int, metrics: dict,
                 meter: throughput.InputMeter, progress_meter: progress.Progress,
                 run_logger: run_log.RunLog,
                 unresolved: perturb_precision.UnresolvedWarning | None = None) -> None:
  """Logs a step's losses, learning rates and the interval's input wait, clips/s and step time.

  The progress line also shows the realised perturbation's cosine; `unresolved` warns (once)
  when it is below its bound.
  """
  scalars = {**train_scalars(config, step, metrics), **meter.report()}
  losses_now = {k: scalars[k] for k in scalars if "loss" in k or k == "realised_cosine"}
  warning = unresolved.message(step, scalars) if unresolved is not None else None
  if warning:
    logging.warning("%s", warning)
  logging.info("%s | %s", progress_meter.report(step, losses_now), throughput.describe(scalars))
  if throughput.is_input_bound(scalars):
    logging.warning("input-bound: the host waited %.0f%% of steps %d..%d for batches (%.1f "
                    "clips/s); %s", 100 * scalars["input_wait_fraction"],
                    step - config.train.log_every + 1, step, scalars["clips_per_s"],
                    throughput.advice(config.data.loader,
                                      element_plan.default_workers(config.data.workers),
                                      element_plan.host_cores()))
  run_logger.write_scalars(step, scalars)


def summarize(config: ml_collections.ConfigDict, step: int,
              evaluations: list[dict]) -> report.RunSummary:
  """The final evaluation's test results, the selected one and (on request) the per-metric best."""
  final = {name: evaluations[-1]["results"][name] for name in config.data.eval_splits}
  selected = selection.selected_evaluation(evaluations, config.data.val_split,
                                           config.eval.select_model, config.data.eval_splits)
  summary = report.RunSummary(step=step, final=final, selected=selected)
  if config.eval.report_best_per_metric:
    best = selection.best_per_metric(evaluations)
    summary.reference_best = {name: best[name] for name in config.data.eval_splits}
  return summary


def make_step_fn(config: ml_collections.ConfigDict, family: families.Family, tx, mesh,
                 perturb_cfg: perturb_config.PerturbConfig):
  """The run's jitted, sharded train step `step(state, batch, rng) -> (state, metrics)`."""
  return train_step.jit_sharded(
      train_step.make_train_step(family.loss_fn, tx, perturb_cfg, config.train.ema_decay,
                                 stateful=True, **families.perturbed_pass_options(config)), mesh)


def compile_step(step_fn, state, device_batch, rng):
  """Compiles the jitted step for these arguments and logs its per-device memory before step 1."""
  compiled, xla_bytes = memory_report.compile_with_memory(step_fn, state, device_batch, rng)
  logging.info("%s", memory_report.format_report(
      memory_report.state_breakdown(state, device_batch), xla_bytes))
  return compiled


def train(config: ml_collections.ConfigDict, workdir: str,
          allow_config_change: bool = False) -> report.Results:
  """Trains per `config`, checkpointing in `workdir` (resuming from it); returns final results.

  The run's entry: `config` is validated here (`validation.validate`), once.
  """
  validation.validate(config)
  return run(config, workdir, sources.load_splits(config.data), allow_config_change).final


def run(config: ml_collections.ConfigDict, workdir: str, splits: dict,
        allow_config_change: bool = False) -> report.RunSummary:
  """Trains and evaluates on the given {split: entries}; prints and returns the summary.

  `config` is a validated one (`train` and `finetune.finetune` validate at their entry). The
  workdir is locked for the run (a second run on it raises run_lock.WorkdirLocked), a resumed run's
  config is checked against the stored one (run_config.ConfigMismatch unless `allow_config_change`
  accepts the differences), and every exit waits for checkpoint writes.
  """
  output_folders.make(workdir, "workdir")  # a file or an unwritable folder: one clear error
  primary = jax.process_index() == 0
  with run_lock.WorkdirLock(workdir) if primary else contextlib.nullcontext():
    run_config.check_resume(workdir, config, allow_config_change, write=primary)
    metadata = run_config.checkpoint_metadata(config)  # the config in the checkpoints too
    manager = checkpointing.checkpoint_manager(workdir, config.train.max_checkpoints,
                                               async_save=config.checkpoint.async_save,
                                               metadata=metadata)
    best = (checkpointing.best_manager(workdir, config.checkpoint.async_save, metadata)
            if config.data.val_split else None)
    with checkpointing.finishing(manager, best):
      return _run(config, workdir, splits, manager, best)


def _run(config: ml_collections.ConfigDict, workdir: str, splits: dict, manager,
         best) -> report.RunSummary:
  """`run`'s body, with the workdir locked and its checkpoint managers open."""
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh)
  splits = prepare_splits(config, splits)
  train_entries = splits[config.data.train_split]
  split_warnings.warn_about_training_split(train_entries, config.train.batch_size,
                                           config.data.train_split)
  family = families.build(config)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb, config.model.dtype)
  motion = motion_features(config) if "motion" in family.input_keys else None
  used = used_splits(config, splits)
  for name, entries in used.items():
    try:  # before the model is compiled: fail fast
      element_plan.check_videos_exist(entries)
      if motion is not None:
        motion.check(entries, config.data.on_bad_video)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"split {name!r}: {e}") from None
  preflight.check_splits(used, config.data.on_bad_video)  # all open?

  tx = optim.make_optimizer(config.train)
  state = init_state(family, tx, perturb_cfg, config.seed, mesh)
  log_setup(config, mesh, sum(x.size for x in jax.tree_util.tree_leaves(state.params)), splits)

  restored = checkpointing.restore_latest(manager, state, set_aside_unreadable=True)
  if restored is not None:
    state = restored
    logging.info("resumed from %s at step %d", manager.directory, int(state.step))
  elif has_init(config):
    state = init_state(family, tx, perturb_cfg, config.seed, mesh,
                       *pretrained_variables(config, state))
  start_step = int(state.step)

  step_fn = make_step_fn(config, family, tx, mesh, perturb_cfg)
  predict_fn = jax.jit(family.predict_fn, out_shardings=sharding.replicated(mesh))
  base_rng = jax.random.key(config.seed)
  eval_names = ([config.data.val_split] if config.data.val_split else []) + list(
      config.data.eval_splits)

  def evaluate_and_select(step, state):
    results = evaluate_all(state, predict_fn, splits, config, mesh, eval_names, motion)
    run_logger.write_evaluation(step, results)
    if best is not None:
      score = selection.selection_score(results[config.data.val_split][config.eval.select_model])
      checkpointing.save(best, step, state, force=True, metrics={"score": score})

  run_logger = run_log.RunLog(workdir, start_step, config.log.tensorboard)
  bad_videos = element_plan.BadVideoLog()
  progress_meter = progress.Progress(config.train.steps, start_step)
  finite = FiniteCheck(train_entries)
  step = start_step
  t0 = time.monotonic()
  meter = throughput.InputMeter(config.train.batch_size * config.sampling.num_clips_train)
  batches = train_batches(config, train_entries, mesh, start_step, bad_videos, motion=motion)
  unresolved = perturb_precision.UnresolvedWarning()
  try:
    with interrupts.stop_flag() as stop:
      while True:
        try:
          batch, device_batch = meter.next_batch(batches)
        except StopIteration:
          break
        if step == start_step:  # compile once, print the footprint, then step with that program
          with meter.paused():
            step_fn = compile_step(step_fn, state, device_batch, base_rng)
        state, metrics = step_fn(state, device_batch, base_rng)
        step += 1
        meter.step_done()
        finite.push(step, metrics, batch["index"])
        log_now = step % config.train.log_every == 0 or step == config.train.steps
        stopping = stop.is_set()  # read once: a signal arriving later is seen after the next step
        save_now = step % config.train.checkpoint_every == 0 or stopping
        eval_now = is_eval_step(step, config) and step < config.train.steps  # last: after the loop
        if log_now or save_now or eval_now:
          finite.flush()
        if log_now:
          log_training(config, step, metrics, meter, progress_meter, run_logger, unresolved)
        if eval_now:
          with meter.paused():
            evaluate_and_select(step, state)
          progress_meter.restart(step)
        if save_now:
          with meter.paused():
            checkpointing.save(manager, step, state, force=True)
        if stopping:
          manager.wait_until_finished()
          raise Interrupted(step, stop.signal_name)
      finite.flush()
      if manager.latest_step() != step:
        checkpointing.save(manager, step, state, force=True)
      manager.wait_until_finished()
      logging.info("trained %d steps in %.1f s; %s", step - start_step, time.monotonic() - t0,
                   bad_videos.summary())
      if not run_logger.evaluations or run_logger.evaluations[-1]["step"] != step:
        evaluate_and_select(step, state)  # a resumed, already finished run has it on record
      if stop.is_set():
        raise Interrupted(step, stop.signal_name)
  finally:
    batches.close()  # stop the loader's threads or processes before anything else unwinds
    run_logger.close()

  if video_io.SHORTFALLS:
    logging.warning("%s", video_io.SHORTFALLS.summary())
  run_calibration.store(config, workdir, splits, state, mesh, motion, family)  # score's scale
  summary = summarize(config, step, run_logger.evaluations)
  run_log.record_result(os.path.join(workdir, "results.jsonl"),  # once per step, even on reruns
                        {"step": step, "results": summary.final,
                         **({"selected": summary.selected} if summary.selected else {})})
  if jax.process_index() == 0:
    report.print_summary(summary)
  return summary
