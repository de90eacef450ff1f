"""Fine-tuning protocol (paper §7.6) over random train/test splits: a linear probe, then full
fine-tuning, per split seed; `python -m vqa_jax.finetune`'s docstring states the protocol."""

import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np

from vqa_jax.config import schedule
from vqa_jax.config import validation
from vqa_jax.config import run_config
from vqa_jax.evaluation import selection
from vqa_jax.training import trainer
from vqa_jax.data import sources

TRAIN_SPLIT, TEST_SPLIT = "ft_train", "ft_test"


def apply_epoch_schedule(config: ml_collections.ConfigDict, num_train: int) -> None:
  """Sets the train section's step counts from finetune's epochs for `num_train` videos."""
  ft = config.finetune
  if not ft.epochs:
    return
  iters = schedule.steps_per_epoch(num_train, config.train.batch_size)
  config.train.steps = config.train.cosine_steps = schedule.epochs_to_steps(ft.epochs, iters)
  config.train.warmup_steps = schedule.epochs_to_steps(ft.warmup_epochs, iters)
  config.train.freeze_backbone_steps = schedule.epochs_to_steps(ft.probe_epochs, iters)
  if config.train.eval_every:
    config.train.eval_every = iters  # evaluate once per epoch, as the reference


def split_config(config: ml_collections.ConfigDict, seed: int,
                 num_train: int) -> ml_collections.ConfigDict:
  """The trainer config of one split: its seed, the split names and the epoch schedule."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.seed = seed
  cfg.data.train_split = TRAIN_SPLIT
  cfg.data.eval_splits = (TEST_SPLIT,)
  # prepare_splits keeps the first ⌊(1 − val_fraction)·N⌋ for training.
  num_fit = math.floor((1.0 - cfg.data.val_fraction) * num_train)
  apply_epoch_schedule(cfg, num_fit)
  return cfg


def mean_std(values: list[float]) -> dict[str, float]:
  """{'mean', 'std'} with the sample std (ddof 1), 0 for a single value."""
  array = np.asarray(values, np.float64)
  return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else 0.0}


def aggregate(per_split: list[dict]) -> dict:
  """{model: {metric: {'mean', 'std'}}} over the splits' {model: {metric: value}}."""
  return {model: {name: mean_std([r[model][name] for r in per_split])
                  for name in per_split[0][model]}
          for model in per_split[0]}


def summary_table(summary: dict, title: str) -> str:
  """One row per model: each metric as mean ± std."""
  lines = [title]
  for model, by_metric in summary.items():
    cells = "  ".join(f"{name} {v['mean']:.4f} ± {v['std']:.4f}" for name, v in by_metric.items())
    lines.append(f"  {model:<5} {cells}")
  return "\n".join(lines)


def finetune(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs every split seed; returns {'final': ..., 'selected': ...} mean ± std over splits.

  The protocol's entry: `config` is validated here (`validation.validate`), once; each split's
  run (`trainer.run`) takes the validated config with its split's names and schedule.
  """
  validation.validate(config)
  run_config.write_config(workdir, config)  # rerun with no --config: this one
  name = config.finetune.dataset
  all_splits = sources.load_splits(config.data)
  if name not in all_splits:
    raise ValueError(f"finetune.dataset {name!r} is not a split of the data source "
                     f"({sorted(all_splits)})")
  finals, selected, seeds = [], [], list(config.finetune.seeds)
  for seed in seeds:
    train, test = selection.shuffled_split(all_splits[name], config.finetune.train_fraction, seed)
    cfg = split_config(config, seed, len(train))
    print(f"split seed {seed}: {len(train)} train / {len(test)} test videos of {name}", flush=True)
    summary = trainer.run(cfg, os.path.join(workdir, f"seed_{seed}"),
                          {TRAIN_SPLIT: train, TEST_SPLIT: test})
    finals.append(summary.final[TEST_SPLIT])
    if summary.selected is not None:
      selected.append(summary.selected["results"][TEST_SPLIT])
  result = {"dataset": name, "seeds": seeds, "final": aggregate(finals)}
  print(summary_table(result["final"], f"{name}, final checkpoint, mean ± std over "
                      f"{len(seeds)} split(s)"), flush=True)
  if selected:
    result["selected"] = aggregate(selected)
    print(summary_table(result["selected"], f"{name}, selected checkpoint, mean ± std over "
                        f"{len(seeds)} split(s)"), flush=True)
  with open(os.path.join(workdir, "finetune_summary.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result), flush=True)
  return result
