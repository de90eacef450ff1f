"""Landscape, sharpness and gap of trained checkpoints: `python -m vqa_jax.landscape`.

  python -m vqa_jax.landscape --config=configs/demo.py --checkpoint=DIR[,DIR2,...] \
      --data=train --out=OUT [--checkpoint_b=DIR_B] [--gap_splits=train,test] [--use_ema]

DIR is anything `pretrained.load_params` reads (a trainer workdir, a step folder, converted
weights). For each checkpoint: metrics on every fixed set, 1-D landscapes along K filter-normalised
random directions, the 2-D landscape over the first two, the AWP-direction landscape, and the
sharpness measures, all on `--data` (a split name of the config's data source), in eval mode (no
dropout), with the training loss (PLCC + rank over minibatches of --loss_batch, default
train.batch_size) and 1 − SRCC. The fixed sets hold `--num_videos` evenly spread videos of each
split (rounded down to a multiple of the loss batch), `--num_clips` centred clips each, sampled
once. With --checkpoint_b the line from the first checkpoint to it is evaluated too. With >= 3
checkpoints the correlations of each sharpness measure with the gaps (Pearson and Spearman,
p-values) and scatter plots are written. Outputs: OUT/landscape.json (every grid value) and
OUT/*.png.
"""

import dataclasses
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
from ml_collections import config_flags
import numpy as np

from vqa_jax.convert import pretrained
from vqa_jax.landscape import analysis
from vqa_jax.landscape import fixed_set
from vqa_jax.landscape import gap as gap_lib
from vqa_jax.landscape import plots
from vqa_jax.landscape import surface
from vqa_jax.runtime import entry_point

GAPS = ("srcc_gap", "loss_gap")
_DEFAULTS = analysis.AnalysisConfig()

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config (a shipped name or a file); default: the one stored with the first "
    "--checkpoint.")
_CHECKPOINT = flags.DEFINE_list("checkpoint", None, "Checkpoint dir(s), comma-separated.")
_CHECKPOINT_B = flags.DEFINE_string("checkpoint_b", "",
                                    "Interpolate from the first checkpoint to it.")
_DATA = flags.DEFINE_string("data", "train", "Split whose fixed clips the landscape uses.")
_GAP_SPLITS = flags.DEFINE_list("gap_splits", ["train", "test"],
                                "TRAIN,TEST splits of the gap, TRAIN metric minus TEST metric "
                                "(empty: no gap).")
_OUT = flags.DEFINE_string("out", None, "Output folder.")
_USE_EMA = flags.DEFINE_bool("use_ema", False, "Analyse the EMA params of trainer checkpoints.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 64,
                                   "Videos per fixed set (<= 0: the whole split).")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 1, "Clips per video.")
_LOSS_BATCH = flags.DEFINE_integer("loss_batch", 0, "Loss minibatch (0: train.batch_size).")
_VIDEO_BATCH = flags.DEFINE_integer("video_batch", 16, "Videos per forward pass.")
_POINT_CHUNK = flags.DEFINE_integer("point_chunk", 4, "Weight points vmapped at once.")
_ALPHA_MAX = flags.DEFINE_float("alpha_max", _DEFAULTS.alpha_max, "Random lines over [-a, a].")
_LINE_POINTS = flags.DEFINE_integer("line_points", _DEFAULTS.line_points, "Points per line.")
_PLANE_POINTS = flags.DEFINE_integer("plane_points", _DEFAULTS.plane_points,
                                     "Points per plane axis (0: no plane).")
_NUM_DIRECTIONS = flags.DEFINE_integer("num_directions", _DEFAULTS.num_directions,
                                       "Random directions.")
_SHARPNESS_ALPHA = flags.DEFINE_float("sharpness_alpha", _DEFAULTS.sharpness_alpha,
                                      "alpha of the loss-increase measure.")
_INCLUDE_BN = flags.DEFINE_bool("include_biases_and_norms", False,
                                "Also move biases, norm parameters and bias tables.")
_AWP_GAMMA_MAX = flags.DEFINE_float("awp_gamma_max", _DEFAULTS.awp_gamma_max,
                                    "AWP landscape over [-g, g].")
_BALL_GAMMA = flags.DEFINE_float("ball_gamma", _DEFAULTS.ball_gamma, "Worst-case ball radius.")
_BALL_STEPS = flags.DEFINE_integer("ball_steps", _DEFAULTS.ball_steps, "Ascent steps.")
_POWER_ITERS = flags.DEFINE_integer("power_iters", _DEFAULTS.power_iters, "Power iterations.")
_PROBES = flags.DEFINE_integer("hutchinson_probes", _DEFAULTS.hutchinson_probes,
                               "Hutchinson probes.")
_SEED = flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of the random directions and probes.")
flags.mark_flags_as_required(["checkpoint", "out"])


def analysis_config() -> analysis.AnalysisConfig:
  """The AnalysisConfig of the flags."""
  return analysis.AnalysisConfig(
      alpha_max=_ALPHA_MAX.value, line_points=_LINE_POINTS.value, plane_points=_PLANE_POINTS.value,
      num_directions=_NUM_DIRECTIONS.value, sharpness_alpha=_SHARPNESS_ALPHA.value,
      include_biases_and_norms=_INCLUDE_BN.value, awp_gamma_max=_AWP_GAMMA_MAX.value,
      ball_gamma=_BALL_GAMMA.value, ball_steps=_BALL_STEPS.value, power_iters=_POWER_ITERS.value,
      hutchinson_probes=_PROBES.value, seed=_SEED.value)


def checkpoint_names(paths) -> list[str]:
  """A short unique name per checkpoint path (its folder name, numbered when repeated)."""
  names = []
  for i, path in enumerate(paths):
    name = os.path.basename(os.path.normpath(path)) or f"checkpoint{i}"
    names.append(name if name not in names else f"{name}_{i}")
  return names


# --config, else the config stored with the first --checkpoint (run_config.stored_config).
chosen_config = entry_point.config_or_stored(_CONFIG, lambda: (_CHECKPOINT.value or [None])[0])


def main(argv):
  """Analyses every checkpoint and writes OUT/landscape.json and the PNGs."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config, out = chosen_config(), _OUT.value
  os.makedirs(out, exist_ok=True)
  loss_batch = _LOSS_BATCH.value or config.train.batch_size
  if _GAP_SPLITS.value and len(_GAP_SPLITS.value) != 2:
    raise app.UsageError(f"--gap_splits needs TRAIN,TEST, got {_GAP_SPLITS.value}")
  sets = fixed_set.build_sets(config, [_DATA.value, *_GAP_SPLITS.value], _NUM_VIDEOS.value,
                    _NUM_CLIPS.value, loss_batch)
  cfg = analysis_config()
  analyzer = analysis.build_analyzer(config, cfg, loss_batch=loss_batch,
                                     video_batch=_VIDEO_BATCH.value, point_chunk=_POINT_CHUNK.value)
  records, first_params = {}, None
  for name, path in zip(checkpoint_names(_CHECKPOINT.value), _CHECKPOINT.value):
    logging.info("analysing %s", pretrained.describe(path))
    params = pretrained.load_params(path, use_ema=_USE_EMA.value)
    first_params = params if first_params is None else first_params
    record = analyzer.checkpoint(params, sets, _DATA.value)
    if _GAP_SPLITS.value:
      train_split, test_split = _GAP_SPLITS.value
      record["gaps"] = gap_lib.generalization_gap(record["metrics"][train_split],
                                                  record["metrics"][test_split])
    record["path"] = path
    records[name] = record
    plots.checkpoint_figures(record, out, name)
    print(json.dumps({"checkpoint": name, "metrics": record["metrics"],
                      "sharpness": record["sharpness"], "gaps": record.get("gaps")}), flush=True)
  sizes = {k: len(v.label) for k, v in sets.items()}
  result = {"config": {"data": _DATA.value, "fixed_sets": sizes,
                       "num_clips": _NUM_CLIPS.value, "loss_batch": loss_batch,
                       "use_ema": _USE_EMA.value, "analysis": dataclasses.asdict(cfg)},
            "checkpoints": records}
  if _CHECKPOINT_B.value:
    ts = np.linspace(-0.5, 1.5, cfg.line_points)
    params_b = pretrained.load_params(_CHECKPOINT_B.value, use_ema=_USE_EMA.value)
    result["interpolation"] = surface.interpolation(analyzer.ev, first_params, params_b, ts,
                                                    sets[_DATA.value])
    plots.plot_lines(ts, {"loss": result["interpolation"]["loss"]},
                     os.path.join(out, "interpolation_loss.png"),
                     xlabel="t (0: first checkpoint, 1: checkpoint_b)", ylabel="training loss")
  if _GAP_SPLITS.value and len(records) >= 3:
    rows = [{"name": n, **r["sharpness"], **r["gaps"]} for n, r in records.items()]
    measures = analysis.SHARPNESS_MEASURES
    result["correlations"] = gap_lib.correlation_table(rows, measures, GAPS)
    plots.scatter_figures(rows, measures, GAPS, result["correlations"], out, colour_key="name")
  with open(os.path.join(out, "landscape.json"), "w", encoding="utf-8") as f:
    json.dump(result, f)
  print(os.path.join(out, "landscape.json"), flush=True)


if __name__ == "__main__":
  entry_point.run(main, chosen_config)
