"""The study's variants and one cross-dataset run: train, then measure flatness and gaps.

A variant is a set of config overrides (VARIANTS: baseline, AWP at several γ, RWP, weight decay).
`run_one` trains a run with `trainer.train` and analyses its final raw params on fixed clips (1 clip
per video, centred offsets, eval mode; `fixed_sets`): metrics on a train subset, 'test' and
'cross', landscapes and sharpness on the train subset (`analysis.Analyzer`), and the gaps (train
metric minus test metric). `python -m vqa_jax.study` runs these as its cross-dataset protocol;
`--pretrain_steps=0 --protocols=cross --config=configs/demo.py` is the earlier landscape study's
from-scratch regime (issue 7), whose command this replaces.
"""

import time

import ml_collections

from vqa_jax.convert import pretrained
from vqa_jax.data import sources
from vqa_jax.landscape import analysis
from vqa_jax.landscape import fixed_set
from vqa_jax.landscape import surface
from vqa_jax.study import flatness_rows
from vqa_jax.training import trainer

# Variant name -> config overrides ("section.field": value) on top of configs/demo.py.
VARIANTS = {
    "baseline": {"perturb.kind": "none"},
    "awp": {"perturb.kind": "awp", "perturb.gamma": 1e-3},
    "awp_1e-4": {"perturb.kind": "awp", "perturb.gamma": 1e-4},  # the paper's γ (its code, README)
    "rwp": {"perturb.kind": "rwp", "perturb.gamma": 1e-3},
    "wd": {"perturb.kind": "none", "train.weight_decay": 0.5},
    # Larger AWP radii: flatness that varies within a seed, for the within-seed correlation.
    "awp_3e-3": {"perturb.kind": "awp", "perturb.gamma": 3e-3},
    "awp_1e-2": {"perturb.kind": "awp", "perturb.gamma": 1e-2},
}

def apply_variant(base: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """A copy of the base config with the variant's overrides."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
  config = ml_collections.ConfigDict(base.to_dict())
  for key, value in VARIANTS[variant].items():
    section, field = key.split(".")
    config[section][field] = value
  return config


def variant_config(base: ml_collections.ConfigDict, variant: str, seed: int,
               steps: int) -> ml_collections.ConfigDict:
  """The base config with the variant's overrides, the seed and the step budget."""
  config = apply_variant(base, variant)
  config.seed = seed
  config.train.steps = config.train.cosine_steps = steps
  config.train.checkpoint_every = steps
  config.train.log_every = max(steps // 6, 1)
  return config


def study_analysis_config(line_points: int, plane_points: int) -> analysis.AnalysisConfig:
  """The study's measurement settings (cheaper than AnalysisConfig's defaults)."""
  return analysis.AnalysisConfig(line_points=line_points, plane_points=plane_points,
                                 sharpness_alpha=0.1, power_iters=8, hutchinson_probes=6,
                                 ball_steps=3)


def fixed_sets(config: ml_collections.ConfigDict, train_videos: int,
               eval_videos: int = 0) -> dict:
  """The fixed clips: a train subset, domain-A 'test' and domain-B 'cross' (1 clip per video).

  `eval_videos` > 0 takes that many videos spread over 'test' and 'cross' (0: all of them).
  """
  splits = sources.load_splits(config.data)
  sizes = {flatness_rows.LANDSCAPE_SET: train_videos, "test": eval_videos, "cross": eval_videos}
  return {name: fixed_set.sample_fixed_set(splits[name], config.sampling, size, num_clips=1)
          for name, size in sizes.items()}


def run_one(analyzer: analysis.Analyzer, config, sets: dict, workdir: str) -> dict:
  """Trains one run (or resumes it) and analyses its final raw params."""
  t0 = time.monotonic()
  results = trainer.train(config, workdir)
  train_seconds = time.monotonic() - t0
  params = pretrained.load_params(workdir, use_ema=False)
  t0 = time.monotonic()
  record = analyzer.checkpoint(params, sets, flatness_rows.LANDSCAPE_SET)
  record.update(trainer_results=results, gaps=flatness_rows.gaps(record["metrics"]),
                seconds={"train": train_seconds, "analysis": time.monotonic() - t0})
  return record


INTERPOLATION_POINTS = [i / 10 for i in range(-5, 16)]  # t in [-0.5, 1.5]: (1 - t) a + t b


def interpolation(analyzer: analysis.Analyzer, sets: dict, workdir_a: str, workdir_b: str) -> dict:
  """The training loss on the line from run a's final raw params to run b's (t = 0 to 1)."""
  load = lambda workdir: pretrained.load_params(workdir, use_ema=False)
  return surface.interpolation(analyzer.ev, load(workdir_a), load(workdir_b), INTERPOLATION_POINTS,
                               sets[flatness_rows.LANDSCAPE_SET])
