"""Fits and stores a finished training run's score calibration (`vqa_jax.scoring.calibration`).

`trainer.run` calls `store` once at the end. For the run's latest checkpoint (the workdir) and,
with a validation split, its selected one (`<workdir>/best`), and for each of the raw and EMA
params, the eval-mode predictions on the validation split (the training split when there is none;
at most MAX_FIT_VIDEOS of it, a seeded subset) are fitted to the labels by the 4-parameter
logistic, with the training labels' (min, max) as the MOS range. The result goes to
`calibration.json` beside each `checkpoints/` folder, which `score` reads.
"""

from __future__ import annotations

import os

from absl import logging
import jax
import ml_collections
import numpy as np

from vqa_jax.scoring import calibration as calibration_lib
from vqa_jax.evaluation import evaluate
from vqa_jax import families
from vqa_jax.convert import pretrained
from vqa_jax.runtime import sharding

MAX_FIT_VIDEOS = 2000  # Enough for 4 parameters; bounds the cost on a large training split.
FEW_FIT_VIDEOS = 20  # Below this a warning says the 4-parameter fit is poorly determined.
PARAMS_KEYS = {"ema_params": True, "params": False}  # params key -> use_ema


def fit_entries(config: ml_collections.ConfigDict, splits: dict) -> tuple[str, list]:
  """(split name, entries) the calibration is fitted on: validation, else (a subset of) training."""
  name = config.data.val_split or config.data.train_split
  entries = list(splits[name])
  if len(entries) > MAX_FIT_VIDEOS:
    keep = np.random.default_rng(config.seed).choice(len(entries), MAX_FIT_VIDEOS, replace=False)
    entries = [entries[i] for i in sorted(keep)]
  return name, entries


def label_range(entries: list) -> tuple[float, float]:
  """(min, max) of the entries' MOS labels."""
  labels = np.asarray([e.mos for e in entries], np.float64)
  return float(labels.min()), float(labels.max())


def run_dirs(workdir: str) -> list[str]:
  """The run folders holding checkpoints: the workdir and, when it exists, its best/."""
  best = os.path.join(workdir, "best")
  return [workdir] + ([best] if os.path.isdir(os.path.join(best, "checkpoints")) else [])


def store(config: ml_collections.ConfigDict, workdir: str, splits: dict, state, mesh,
          motion=None, family: families.Family | None = None) -> None:
  """Fits the calibration of every checkpoint of the run and writes its calibration.json.

  `family` is the run's (`families.build(config)`, built here when not given).
  """
  family = family or families.build(config)
  predict_fn = jax.jit(family.predict_fn, out_shardings=sharding.replicated(mesh))
  like = families.variables(state.params, state.model_state)
  split, entries = fit_entries(config, splits)
  if len(entries) < FEW_FIT_VIDEOS:
    logging.warning("score calibration: fitting 4 parameters on %d videos of split '%s'; the "
                    "calibrated scale is poorly determined", len(entries), split)
  labels_range = label_range(splits[config.data.train_split])
  batch_size = evaluate.eval_batch_size(config.eval.batch_size, mesh)
  for run_dir in run_dirs(workdir):
    step = pretrained.locate(run_dir).step
    variables = {key: pretrained.load_variables(run_dir, like=like, use_ema=use_ema)
                 for key, use_ema in PARAMS_KEYS.items()}
    preds, labels = evaluate.predict_split_models(  # one decoding pass for both params
        predict_fn, variables, entries, config.sampling, batch_size,
        config.sampling.num_clips_eval, mesh, config.data.on_bad_video, motion,
        config.data.loader, config.data.workers)
    for params_key, pred in preds.items():
      fitted = calibration_lib.fit(pred, labels, labels_range,
                                   f"split '{split}' ({pred.size} videos), step {step}", step)
      if fitted is None:
        logging.warning("calibration of %s '%s': the logistic fit did not converge; none stored",
                        run_dir, params_key)
      elif jax.process_index() == 0:
        calibration_lib.save(run_dir, params_key, fitted)
