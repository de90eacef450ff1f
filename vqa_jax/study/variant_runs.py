"""One cross-dataset run of a variant (`variants`): train, then measure flatness and gaps.

`run_one` trains a run with `trainer.train` and analyses its final EMA params (the pre-registered
model; raw on request) on fixed clips (1 clip per video, centred offsets, eval mode;
`fixed_sets`): metrics on a train subset and every test split, landscapes and sharpness on the
train subset (`analysis.Analyzer`), the gaps (train metric minus test metric), the treatment check
(`treatment`: flatness at the study's training radii, realised perturbation) and the
per-distortion SRCC (`distortion_breakdown`). `python -m vqa_jax.study` runs these as its
cross-dataset protocol.
"""

import time

import ml_collections

from vqa_jax.convert import pretrained
from vqa_jax.data import sources
from vqa_jax.landscape import analysis
from vqa_jax.landscape import fixed_set
from vqa_jax.landscape import surface
from vqa_jax.study import distortion_breakdown
from vqa_jax.study import flatness_rows
from vqa_jax.study import treatment
from vqa_jax.study import variants
from vqa_jax.training import trainer

LOGGED_STEPS = 30


def variant_config(base: ml_collections.ConfigDict, variant: str, seed: int,
               steps: int) -> ml_collections.ConfigDict:
  """The base config with the variant's overrides, the seed and the step budget."""
  config = variants.apply_variant(base, variant)
  config.seed = seed
  config.train.steps = config.train.cosine_steps = steps
  config.train.checkpoint_every = steps
  config.train.log_every = max(steps // LOGGED_STEPS, 1)  # the realised perturbation's mean
  return config


def study_analysis_config(line_points: int, plane_points: int) -> analysis.AnalysisConfig:
  """The study's measurement settings (cheaper than AnalysisConfig's defaults)."""
  return analysis.AnalysisConfig(line_points=line_points, plane_points=plane_points,
                                 num_directions=2 if plane_points == 0 else 4,
                                 sharpness_alpha=0.1, power_iters=4, hutchinson_probes=4,
                                 ball_steps=3)


def fixed_sets(config: ml_collections.ConfigDict, train_videos: int,
               eval_videos: int = 0) -> dict:
  """The fixed clips: a train subset and every test split (1 clip per video).

  `eval_videos` > 0 takes that many videos spread over each test split (0: all of them).
  """
  splits = sources.load_splits(config.data)
  sizes = {flatness_rows.LANDSCAPE_SET: train_videos,
           **{name: eval_videos for name in config.data.eval_splits}}
  return {name: fixed_set.sample_fixed_set(splits[name], config.sampling, size, num_clips=1)
          for name, size in sizes.items()}


def run_one(analyzer: analysis.Analyzer, flatness: treatment.FlatnessAtRadii, config, sets: dict,
            workdir: str, gammas, use_ema: bool, metadata=None) -> dict:
  """Trains one run (or resumes it); analyses its final EMA (or raw) params, with the treatment."""
  t0 = time.monotonic()
  results = trainer.train(config, workdir)
  train_seconds = time.monotonic() - t0
  params = pretrained.load_params(workdir, use_ema=use_ema)
  t0 = time.monotonic()
  record = analyzer.checkpoint(params, sets, flatness_rows.LANDSCAPE_SET)
  record["treatment"] = {**flatness(params, sets[flatness_rows.LANDSCAPE_SET], gammas),
                         **treatment.realised(workdir)}
  record["per_distortion"] = distortion_breakdown.breakdown(analyzer.ev.predictions, params, sets,
                                                            metadata or {})
  record.update(trainer_results=results, gaps=flatness_rows.gaps(record["metrics"]),
                analysed_model="ema" if use_ema else "raw",
                seconds={"train": train_seconds, "analysis": time.monotonic() - t0})
  return record


INTERPOLATION_POINTS = [i / 10 for i in range(-5, 16)]  # t in [-0.5, 1.5]: (1 - t) a + t b


def interpolation(analyzer: analysis.Analyzer, sets: dict, workdir_a: str, workdir_b: str,
                  use_ema: bool) -> dict:
  """The training loss on the line from run a's final EMA (or raw) params to run b's (t = 0 to 1)."""
  load = lambda workdir: pretrained.load_params(workdir, use_ema=use_ema)
  return surface.interpolation(analyzer.ev, load(workdir_a), load(workdir_b), INTERPOLATION_POINTS,
                               sets[flatness_rows.LANDSCAPE_SET])
