"""One training run: data, model, sharded state, the jitted perturbed step, checkpoints, evaluation."""

import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax import checkpointing
from vqa_jax import config_base
from vqa_jax import evaluate
from vqa_jax import losses
from vqa_jax import optim
from vqa_jax import progress
from vqa_jax import report
from vqa_jax import sharding
from vqa_jax import train_step
from vqa_jax.data import input_pipeline
from vqa_jax.data import sources
from vqa_jax.models import model as model_lib


def make_loss_fn(model, rank_weight: float) -> train_step.LossFn:
  """loss_fn(params, batch, rng) -> (PLCC + rank loss, per-video predictions) in train mode."""

  def loss_fn(params, batch, rng):
    quality_map = model.apply({"params": params}, batch["video"], train=True, rngs={"dropout": rng})
    pred = model_lib.video_score(quality_map)
    return losses.vqa_loss(pred, batch["label"], rank_weight), pred

  return loss_fn


def make_apply_fn(model):
  """apply(params, video, train) -> quality map, for evaluation."""
  return lambda params, video, train: model.apply({"params": params}, video, train=train)


def init_state(model, tx, config, mesh) -> train_step.TrainState:
  """Initial train state, created directly with replicated shardings."""
  s = config.sampling
  size = s.grid * s.patch
  dummy = jnp.zeros((1, s.clip_len, size, size, 3), jnp.uint8)

  perturb_cfg = train_step.PerturbConfig.from_config(config.perturb)

  def create(key):
    params = model.init({"params": key}, dummy, train=False)["params"]
    return train_step.create_train_state(params, tx, perturb_cfg)

  return jax.jit(create, out_shardings=sharding.replicated(mesh))(jax.random.key(config.seed))


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


def train_batches(config: ml_collections.ConfigDict, entries: list, mesh, start_step: int = 0,
                  bad_videos: input_pipeline.BadVideoLog | None = None):
  """Yields (host batch, device batch) of the configured training pipeline from `start_step` on."""
  dataset = input_pipeline.train_dataset(entries, config.sampling, config.train.batch_size,
                                         seed=config.seed, num_steps=config.train.steps,
                                         start_step=start_step,
                                         num_clips=config.sampling.num_clips_train,
                                         on_bad_video=config.data.on_bad_video,
                                         bad_videos=bad_videos)
  for batch in input_pipeline.as_numpy(dataset):
    yield batch, sharding.shard_batch({"video": batch["video"], "label": batch["label"]}, mesh)


def check_finite(step: int, metrics: dict, batch: dict, entries: list) -> None:
  """Stops the run with the step and the batch's videos when the loss is not finite."""
  if not np.isfinite(metrics["loss"]):
    videos = [entries[i].path for i in np.asarray(batch["index"]).tolist()]
    raise FloatingPointError(f"non-finite loss {metrics['loss']} at step {step}; batch videos: {videos}")


def append_jsonl(path: str, record: dict) -> None:
  """Appends one JSON record to a JSON-lines file (process 0 only)."""
  if jax.process_index() == 0:
    with open(path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")


def evaluate_all(state, predict_fn, splits, config, mesh) -> report.Results:
  """Metrics for every eval split and every requested model ('raw' and/or 'ema' params)."""
  batch_size = evaluate.eval_batch_size(config.eval.batch_size, mesh)
  params_by_model = {"raw": state.params, "ema": state.ema_params}
  results = {}
  for name in config.data.eval_splits:
    results[name] = {
        model: evaluate.evaluate_split(predict_fn, params_by_model[model], splits[name],
                                       config.sampling, batch_size,
                                       config.sampling.num_clips_eval, mesh,
                                       config.data.on_bad_video)
        for model in config.eval.models}
  return results


def train(config: ml_collections.ConfigDict, workdir: str) -> report.Results:
  """Trains per `config`, checkpointing in `workdir` (resuming from it), then evaluates."""
  config_base.validate(config)
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh)
  splits = sources.load_splits(config.data)
  train_entries = splits[config.data.train_split]

  model = model_lib.build_model(config.model)
  tx = optim.make_optimizer(config.train)
  state = init_state(model, tx, config, mesh)
  log_setup(config, mesh, sum(x.size for x in jax.tree_util.tree_leaves(state.params)), splits)

  manager = checkpointing.checkpoint_manager(workdir, config.train.max_checkpoints)
  restored = checkpointing.restore_latest(manager, state)
  if restored is not None:
    state = restored
    logging.info("resumed from %s at step %d", manager.directory, int(state.step))
  start_step = int(state.step)

  step_fn = train_step.jit_sharded(
      train_step.make_train_step(make_loss_fn(model, config.train.rank_weight), tx,
                                 train_step.PerturbConfig.from_config(config.perturb),
                                 config.train.ema_decay), mesh)
  predict_fn = jax.jit(train_step.make_predict_fn(make_apply_fn(model)),
                       out_shardings=sharding.replicated(mesh))
  base_rng = jax.random.key(config.seed)

  bad_videos = input_pipeline.BadVideoLog()
  meter = progress.Progress(config.train.steps, start_step)
  metrics_file = os.path.join(workdir, "metrics.jsonl")
  step = start_step
  t0 = time.monotonic()
  for batch, device_batch in train_batches(config, train_entries, mesh, start_step, bad_videos):
    state, metrics = step_fn(state, device_batch, base_rng)
    step += 1
    if step % config.train.log_every == 0 or step == config.train.steps:
      scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
      check_finite(step, scalars, batch, train_entries)
      logging.info("%s", meter.report(step, {k: scalars[k] for k in scalars if "loss" in k}))
      append_jsonl(metrics_file, {"step": step, **scalars})
    if step % config.train.checkpoint_every == 0:
      checkpointing.save(manager, step, state)
  if manager.latest_step() != step:
    checkpointing.save(manager, step, state, force=True)
  manager.wait_until_finished()
  logging.info("trained %d steps in %.1f s; %s", step - start_step, time.monotonic() - t0,
               bad_videos.summary())

  results = evaluate_all(state, predict_fn, splits, config, mesh)
  append_jsonl(os.path.join(workdir, "results.jsonl"), {"step": step, "results": results})
  print(report.results_table(results), flush=True)
  print(report.results_json(results, step), flush=True)
  return results
