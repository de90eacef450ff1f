"""Radius sweeps: K models trained at once by vmapping the step over stacked states, one population
per perturbation kind (`python -m vqa_jax.sweep`, whose docstring states what it prints and writes)."""

import dataclasses
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax.config import validation
from vqa_jax.evaluation import evaluate
from vqa_jax import families
from vqa_jax.training import run_log
from vqa_jax.evaluation import metrics as metrics_lib
from vqa_jax.training import optim
from vqa_jax.config import perturb_config
from vqa_jax.runtime import progress
from vqa_jax.config import run_config
from vqa_jax.runtime import sharding
from vqa_jax.training import train_step
from vqa_jax.training import trainer
from vqa_jax.data import sources


def make_members(base: perturb_config.PerturbConfig, kinds: list[str],
                 radii: list[float]) -> list[perturb_config.PerturbConfig]:
  """One config per (kind, radius): gamma for awp/rwp, rho for sam/asam."""
  return [dataclasses.replace(base, kind=kind, radius=float(r))
          for kind in kinds for r in radii]


def config_members(config: ml_collections.ConfigDict, kinds: list[str] | None,
                   radii: list[float]) -> list[perturb_config.PerturbConfig]:
  """`make_members` around config's perturbation: every (kind, radius); no kinds: config's kind."""
  base = perturb_config.PerturbConfig.from_config(config.perturb, config.model.dtype)
  return make_members(base, kinds or [base.kind], radii)


def motion_features(config: ml_collections.ConfigDict, family: families.Family):
  """The `motion` input source of a family that reads one (SimpleVQA), else None."""
  return trainer.motion_features(config) if "motion" in family.input_keys else None


def train_population(config: ml_collections.ConfigDict, cfgs: list[perturb_config.PerturbConfig],
                     mesh, splits, workdir: str, family: families.Family | None = None
                     ) -> tuple[train_step.TrainState, np.ndarray]:
  """Trains all members for config.train.steps; returns (stacked states, last-log-window losses).

  `family` is the sweep's (`families.build(config)`, built here when not given).
  """
  os.makedirs(workdir, exist_ok=True)
  family = family or families.build(config)
  tx = optim.make_optimizer(config.train)
  state = trainer.init_state(family, tx, cfgs[0], config.seed, mesh)
  stack = lambda s: train_step.stack_states([s] * len(cfgs))
  states = jax.jit(stack, out_shardings=sharding.replicated(mesh))(state)
  step_fn = train_step.jit_sharded(
      train_step.make_population_step(family.loss_fn, tx, cfgs, config.train.ema_decay,
                                      stateful=True, **families.perturbed_pass_options(config)),
      mesh)
  base_rng = jax.random.key(config.seed)
  meter = progress.Progress(config.train.steps)
  loss_sum, window, step = jnp.zeros(len(cfgs)), 0, 0
  for _, device_batch in trainer.train_batches(config, splits[config.data.train_split], mesh,
                                               motion=motion_features(config, family)):
    states, metrics = step_fn(states, device_batch, base_rng)
    loss_sum, window, step = loss_sum + metrics["loss"], window + 1, step + 1
    if step % config.train.log_every == 0 or step == config.train.steps:
      window_losses = np.asarray(jax.device_get(loss_sum)) / window
      if not np.all(np.isfinite(window_losses)):
        raise FloatingPointError(f"non-finite loss {window_losses.tolist()} at step {step}")
      logging.info("%s", meter.report(step, {f"loss[{i}]": v
                                              for i, v in enumerate(window_losses)}))
      run_log.append_jsonl(os.path.join(workdir, "metrics.jsonl"), {
          "step": step, "kind": cfgs[0].kind, "radius": [c.radius for c in cfgs],
          **{k: np.asarray(v).tolist() for k, v in train_step.logged_metrics(metrics).items()}})
      if step < config.train.steps:
        loss_sum, window = jnp.zeros(len(cfgs)), 0
  return states, window_losses


def evaluate_population(states: train_step.TrainState, config: ml_collections.ConfigDict, splits,
                        split_names: list[str], mesh,
                        family: families.Family | None = None) -> list[dict]:
  """Per member, {split: {model: metrics}} for `split_names`, all members scored in one pass."""
  family = family or families.build(config)
  # Members on the variables' leading axis; every model input shared.
  member_predict = lambda variables, *inputs: jax.vmap(
      lambda v: family.predict_fn(v, *inputs))(variables).T
  predict_fn = jax.jit(member_predict, out_shardings=sharding.replicated(mesh))
  batch_size = evaluate.eval_batch_size(config.eval.batch_size, mesh)
  params_by_model = {"raw": families.variables(states.params, states.model_state),
                     "ema": families.variables(states.ema_params, states.model_state)}
  num_members = int(states.step.shape[0])
  results = [{name: {} for name in split_names} for _ in range(num_members)]
  models = {model_name: params_by_model[model_name] for model_name in config.eval.models}
  for name in split_names:
    preds, labels = evaluate.predict_split_models(predict_fn, models, splits[name],
                                                  config.sampling, batch_size,
                                                  config.sampling.num_clips_eval, mesh,
                                                  config.data.on_bad_video,
                                                  motion_features(config, family),
                                                  config.data.loader, config.data.workers)
    for model_name, model_preds in preds.items():
      for i in range(num_members):
        results[i][name][model_name] = metrics_lib.quality_metrics(model_preds[:, i], labels)
  return results


def results_table(members: list[perturb_config.PerturbConfig], train_losses: np.ndarray,
                  results: list[dict], eval_model: str) -> str:
  """One row per member: kind, radius, final train loss, then SRCC and PLCC per split."""
  split_names = list(results[0])
  columns = [(name, m) for name in split_names for m in ("srcc", "plcc")]
  width = lambda name: max(len(name) + 5, 10)
  header = f"{'kind':<5} {'radius':>8} {'train_loss':>10}" + "".join(
      f" {name + '_' + m:>{width(name)}}" for name, m in columns)
  lines = [f"sweep metrics of the '{eval_model}' model", header, "-" * len(header)]
  for member, loss, res in zip(members, train_losses, results):
    cells = "".join(f" {res[name][eval_model][m]:>{width(name)}.4f}" for name, m in columns)
    lines.append(f"{member.kind:<5} {member.radius:>8.2g} {loss:>10.4f}{cells}")
  return "\n".join(lines)


def run(config: ml_collections.ConfigDict, members: list[perturb_config.PerturbConfig],
        workdir: str, eval_model: str = "raw") -> list[dict]:
  """Trains and evaluates the population, prints the table and a JSON line; returns the records.

  The sweep's entry: `config` is validated here (`validation.validate`), once.
  """
  validation.validate(config)
  run_config.write_config(workdir, config)  # the resolved config beside sweep.jsonl
  logging.info("%s", optim.describe_schedule(config.train))
  if eval_model not in config.eval.models:
    raise ValueError(f"eval model {eval_model!r} is not in config.eval.models {config.eval.models}")
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh)
  splits = sources.load_splits(config.data)
  logging.info("sweep of %d members: %s", len(members), [(m.kind, m.radius) for m in members])
  split_names = [config.data.train_split] + [s for s in config.data.eval_splits
                                             if s != config.data.train_split]
  train_losses, results = [None] * len(members), [None] * len(members)
  family = families.build(config)
  for kind in dict.fromkeys(m.kind for m in members):  # one program per kind, in member order
    indices = [i for i, m in enumerate(members) if m.kind == kind]
    group = [members[i] for i in indices]
    states, group_losses = train_population(config, group, mesh, splits, workdir, family)
    group_results = evaluate_population(states, config, splits, split_names, mesh, family)
    for i, loss, res in zip(indices, group_losses, group_results):
      train_losses[i], results[i] = loss, res
  records = [{"kind": m.kind, "radius": m.radius, "train_loss": float(loss), "results": res}
             for m, loss, res in zip(members, train_losses, results)]
  for record in records:
    run_log.append_jsonl(os.path.join(workdir, "sweep.jsonl"),
                         {"step": config.train.steps, **record})
  print(results_table(members, train_losses, results, eval_model), flush=True)
  print(json.dumps({"step": config.train.steps, "members": records}), flush=True)
  return records
