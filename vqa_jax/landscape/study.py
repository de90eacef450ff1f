"""The landscape study: baseline / AWP / RWP / weight-decay runs x seeds on synthetic data.

  python -m vqa_jax.landscape.study --out=/tmp/landscape_study [--steps=300] [--seeds=0,1,2]

Each run is `trainer.train` on configs/demo.py (synthetic domain A train, test on domain A 'test'
and domain B 'cross') with its variant's overrides and `--steps` steps (cosine over the same steps).
Its final raw params (`pretrained.load_params(workdir, use_ema=False)`) are then analysed on fixed
clips (1 clip per video, centred offsets, eval mode): metrics on a train subset, 'test' and 'cross',
landscapes and sharpness on the train subset (`analysis.Analyzer`). Gaps and their correlation with
each sharpness measure across all runs go to OUT/study.json and OUT/report.md with the PNGs.
Finished runs are kept in OUT/runs/<run>.json and not repeated when the study is restarted.
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

from vqa_jax import pretrained
from vqa_jax import trainer
from vqa_jax.data import sources
from vqa_jax.landscape import analysis
from vqa_jax.landscape import fixed_set
from vqa_jax.landscape import gap as gap_lib
from vqa_jax.landscape import study_report
from vqa_jax.landscape import surface

# Variant name -> config overrides ("section.field": value) on top of configs/demo.py.
VARIANTS = {
    "baseline": {"perturb.kind": "none"},
    "awp": {"perturb.kind": "awp", "perturb.gamma": 1e-3},
    "rwp": {"perturb.kind": "rwp", "perturb.gamma": 1e-3},
    "wd": {"perturb.kind": "none", "train.weight_decay": 0.5},
}
# loss_increase: at α_s = 0.1 (evaluated directly); loss_increase_line: at α = ±LINE_ALPHA, read off
# the 1-D random lines.
MEASURES = analysis.SHARPNESS_MEASURES + ("loss_increase_line",)
LINE_ALPHA = 0.5
GAPS = ("srcc_gap", "loss_gap", "cross_srcc_gap", "cross_loss_gap")
LANDSCAPE_SET = "train"

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The study's flags (defined only when it runs, so importing the module defines none)."""
  flags.DEFINE_string("out", "/tmp/landscape_study", "Output folder (runs, report, PNGs).")
  flags.DEFINE_string("config", "configs/demo.py", "Base config file (get_config()).")
  flags.DEFINE_integer("steps", 300, "Training steps per run.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (init and data order) per variant.")
  flags.DEFINE_list("variants", list(VARIANTS), f"Variants among {list(VARIANTS)}.")
  flags.DEFINE_integer("train_videos", 64, "Train subset size (a multiple of the batch size).")
  flags.DEFINE_integer("line_points", 21, "Points per 1-D landscape.")
  flags.DEFINE_integer("plane_points", 9, "Points per axis of the 2-D landscape.")


def load_config(path: str) -> ml_collections.ConfigDict:
  """get_config() of a config file."""
  namespace = {}
  with open(path, encoding="utf-8") as f:
    exec(compile(f.read(), path, "exec"), namespace)  # pylint: disable=exec-used
  return namespace["get_config"]()


def run_config(base: ml_collections.ConfigDict, variant: str, seed: int,
               steps: int) -> ml_collections.ConfigDict:
  """The base config with the variant's overrides, the seed and the step budget."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; known: {list(VARIANTS)}")
  config = ml_collections.ConfigDict(base.to_dict())
  for key, value in VARIANTS[variant].items():
    section, field = key.split(".")
    config[section][field] = value
  config.seed = seed
  config.train.steps = config.train.cosine_steps = steps
  config.train.checkpoint_every = steps
  config.train.log_every = max(steps // 6, 1)
  return config


def fixed_sets(config: ml_collections.ConfigDict, train_videos: int) -> dict:
  """The fixed clips: a train subset, domain-A 'test' and domain-B 'cross' (1 clip per video)."""
  splits = sources.load_splits(config.data)
  sizes = {LANDSCAPE_SET: train_videos, "test": 0, "cross": 0}
  return {name: fixed_set.sample_fixed_set(splits[name], config.sampling, size, num_clips=1)
          for name, size in sizes.items()}


def gaps(metrics: dict) -> dict[str, float]:
  """In-domain (train vs test) and cross-domain (train vs cross) gaps of one checkpoint."""
  in_domain = gap_lib.generalization_gap(metrics[LANDSCAPE_SET], metrics["test"])
  cross = gap_lib.generalization_gap(metrics[LANDSCAPE_SET], metrics["cross"])
  return {**in_domain, **{f"cross_{k}": v for k, v in cross.items()}}


def run_one(analyzer: analysis.Analyzer, config, sets: dict, workdir: str) -> dict:
  """Trains one run (or resumes it) and analyses its final raw params."""
  t0 = time.monotonic()
  results = trainer.train(config, workdir)
  train_seconds = time.monotonic() - t0
  params = pretrained.load_params(workdir, use_ema=False)
  t0 = time.monotonic()
  record = analyzer.checkpoint(params, sets, LANDSCAPE_SET)
  record.update(trainer_results=results, gaps=gaps(record["metrics"]),
                seconds={"train": train_seconds, "analysis": time.monotonic() - t0})
  return record


def study_row(name: str, record: dict) -> dict:
  """One correlation row: the run's sharpness measures and gaps.

  Adds the derived `loss_increase_line` (from the stored 1-D lines) to the record's sharpness.
  """
  record["sharpness"]["loss_increase_line"] = analysis.line_increase(record["landscape"],
                                                                     LINE_ALPHA)
  return {"name": name, "variant": record["variant"], **record["sharpness"], **record["gaps"]}


def main(argv):
  """Runs every variant x seed, then the interpolation, correlations and the report."""
  del argv
  out = FLAGS.out
  os.makedirs(os.path.join(out, "runs"), exist_ok=True)
  base = load_config(FLAGS.config)
  cfg = analysis.AnalysisConfig(line_points=FLAGS.line_points, plane_points=FLAGS.plane_points,
                                sharpness_alpha=0.1, power_iters=8, hutchinson_probes=6,
                                ball_steps=3)
  analyzer = analysis.build_analyzer(base, cfg)
  sets = fixed_sets(base, FLAGS.train_videos)
  runs = {}
  t_start = time.monotonic()
  for variant in FLAGS.variants:
    for seed in (int(s) for s in FLAGS.seeds):
      name = f"{variant}_s{seed}"
      path = os.path.join(out, "runs", f"{name}.json")
      if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
          runs[name] = json.load(f)
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
        [i / 10 for i in range(-5, 16)], sets[LANDSCAPE_SET])
  rows = [study_row(n, r) for n, r in runs.items()]
  correlations = gap_lib.correlation_table(rows, MEASURES, GAPS) if len(rows) >= 3 else {}
  meta = {"command": "python -m vqa_jax.landscape.study " + " ".join(
              f"--{k}={v}" for k, v in (("out", out), ("steps", FLAGS.steps),
                                         ("seeds", ",".join(FLAGS.seeds)),
                                         ("variants", ",".join(FLAGS.variants)))),
          "steps": FLAGS.steps, "variants": {v: VARIANTS[v] for v in FLAGS.variants},
          "analysis": dataclasses.asdict(cfg),
          "fixed_sets": {k: len(v.label) for k, v in sets.items()},
          "wall_seconds_this_invocation": time.monotonic() - t_start}
  with open(os.path.join(out, "study.json"), "w", encoding="utf-8") as f:
    json.dump({"meta": meta, "runs": runs, "rows": rows, "correlations": correlations,
               "interpolation": interpolation}, f)
  study_report.write_report(out, meta, runs, rows, correlations, interpolation, MEASURES, GAPS)
  print(os.path.join(out, "report.md"), flush=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)
