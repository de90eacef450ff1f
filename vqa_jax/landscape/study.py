"""The landscape study: baseline / AWP / RWP / weight-decay runs x seeds on synthetic data.

  python -m vqa_jax.landscape.study --out=/tmp/landscape_study [--steps=300] [--seeds=0,1,2]
  python -m vqa_jax.landscape.study --out=/tmp/landscape_study --report_only   # report only

Each run is `trainer.train` on configs/demo.py (synthetic domain A train, test on domain A 'test'
and domain B 'cross') with its variant's overrides and `--steps` steps (cosine over the same steps).
Its final raw params (`pretrained.load_params(workdir, use_ema=False)`) are then analysed on fixed
clips (1 clip per video, centred offsets, eval mode): metrics on a train subset, 'test' and 'cross',
landscapes and sharpness on the train subset (`analysis.Analyzer`). Gaps (train metric minus test
metric) and their correlation with each sharpness measure, pooled over all runs and within seed, go
to OUT/study.json and OUT/report.md with the PNGs (`study_report.save_study`). Finished runs are
kept in OUT/runs/<run>.json and not repeated when the study is restarted; --report_only rebuilds
study.json and the report from them without training (`study_report.rebuild`).

`python -m vqa_jax.study` (issue 21) runs these same runs as its cross-dataset protocol, from
pretrained weights, with pairing checks, the fine-tuning protocol and paired bootstrap intervals;
`python -m vqa_jax.study --config=configs/demo.py --pretrain_steps=0 --protocols=cross` is this
study's from-scratch regime there (without the baseline-to-AWP interpolation figure).
"""

import dataclasses
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import ml_collections

from vqa_jax.convert import pretrained
from vqa_jax.training import trainer
from vqa_jax.data import sources
from vqa_jax.landscape import analysis
from vqa_jax.landscape import fixed_set
from vqa_jax.landscape import study_records
from vqa_jax.landscape import study_report
from vqa_jax.landscape import surface

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

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The study's flags (defined only when it runs, so importing the module defines none)."""
  flags.DEFINE_string("out", "/tmp/landscape_study", "Output folder (runs, report, PNGs).")
  flags.DEFINE_string("config", "configs/demo.py", "Base config file (get_config()).")
  flags.DEFINE_integer("steps", 300, "Training steps per run.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (init and data order) per variant.")
  flags.DEFINE_list("variants", ["baseline", "awp", "rwp", "wd"],
                    f"Variants among {list(VARIANTS)}.")
  flags.DEFINE_integer("train_videos", 64, "Train subset size (a multiple of the batch size).")
  flags.DEFINE_integer("line_points", 21, "Points per 1-D landscape.")
  flags.DEFINE_integer("plane_points", 9, "Points per axis of the 2-D landscape.")
  flags.DEFINE_bool("report_only", False,
                    "Rebuild OUT/study.json and the report from OUT/runs/*.json; train nothing.")


def load_config(path: str) -> ml_collections.ConfigDict:
  """get_config() of a config file."""
  namespace = {}
  with open(path, encoding="utf-8") as f:
    exec(compile(f.read(), path, "exec"), namespace)  # pylint: disable=exec-used
  return namespace["get_config"]()


def apply_variant(base: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
  """A copy of the base config with the variant's overrides."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
  config = ml_collections.ConfigDict(base.to_dict())
  for key, value in VARIANTS[variant].items():
    section, field = key.split(".")
    config[section][field] = value
  return config


def run_config(base: ml_collections.ConfigDict, variant: str, seed: int,
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
  sizes = {study_records.LANDSCAPE_SET: train_videos, "test": eval_videos, "cross": eval_videos}
  return {name: fixed_set.sample_fixed_set(splits[name], config.sampling, size, num_clips=1)
          for name, size in sizes.items()}


def run_one(analyzer: analysis.Analyzer, config, sets: dict, workdir: str) -> dict:
  """Trains one run (or resumes it) and analyses its final raw params."""
  t0 = time.monotonic()
  results = trainer.train(config, workdir)
  train_seconds = time.monotonic() - t0
  params = pretrained.load_params(workdir, use_ema=False)
  t0 = time.monotonic()
  record = analyzer.checkpoint(params, sets, study_records.LANDSCAPE_SET)
  record.update(trainer_results=results, gaps=study_records.gaps(record["metrics"]),
                seconds={"train": train_seconds, "analysis": time.monotonic() - t0})
  return record


def main(argv):
  """Runs every variant x seed, then the interpolation, correlations and the report."""
  del argv
  out = FLAGS.out
  if FLAGS.report_only:
    command = f"python -m vqa_jax.landscape.study --out={out} --report_only"
    print(study_report.rebuild(out, command), flush=True)
    return
  os.makedirs(os.path.join(out, "runs"), exist_ok=True)
  base = load_config(FLAGS.config)
  cfg = study_analysis_config(FLAGS.line_points, FLAGS.plane_points)
  analyzer = analysis.build_analyzer(base, cfg)
  sets = fixed_sets(base, FLAGS.train_videos)
  runs = {}
  t_start = time.monotonic()
  for variant in FLAGS.variants:
    for seed in (int(s) for s in FLAGS.seeds):
      name = f"{variant}_s{seed}"
      path = os.path.join(out, "runs", f"{name}.json")
      if os.path.exists(path):
        runs[name] = study_records.load_json(path)
        continue
      logging.info("run %s", name)
      record = run_one(analyzer, run_config(base, variant, seed, FLAGS.steps), sets,
                       os.path.join(out, "work", name))
      record.update(name=name, variant=variant, seed=seed)
      with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)
      runs[name] = record
      logging.info("run %s done: %s", name, record["gaps"])

  interpolation = None
  seed0 = FLAGS.seeds[0]
  if f"baseline_s{seed0}" in runs and f"awp_s{seed0}" in runs:
    load = lambda n: pretrained.load_params(os.path.join(out, "work", n), use_ema=False)
    interpolation = surface.interpolation(
        analyzer.ev, load(f"baseline_s{seed0}"), load(f"awp_s{seed0}"),
        [i / 10 for i in range(-5, 16)], sets[study_records.LANDSCAPE_SET])
  meta = {"command": "python -m vqa_jax.landscape.study " + " ".join(
              f"--{k}={v}" for k, v in (("out", out), ("steps", FLAGS.steps),
                                         ("train_videos", FLAGS.train_videos),
                                         ("seeds", ",".join(FLAGS.seeds)),
                                         ("variants", ",".join(FLAGS.variants)))),
          "steps": FLAGS.steps, "variants": {v: VARIANTS[v] for v in FLAGS.variants},
          "analysis": dataclasses.asdict(cfg),
          "fixed_sets": {k: len(v.label) for k, v in sets.items()},
          "wall_seconds_this_invocation": time.monotonic() - t_start}
  print(study_report.save_study(out, meta, runs, interpolation), flush=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)
