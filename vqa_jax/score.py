"""Scores video files with a trained model: one JSON line per video, result files, map PNGs.

  python -m vqa_jax.score [--config=fast_vqa_b] --checkpoint=DIR [--noema] \
      [--jsonl=FILE] [--csv=FILE] [--resume [--allow_mixed_checkpoints]] \
      [--num_shards=N --shard_index=I] \
      [--quality-map=FILE.png|FOLDER/ [--map_per_video_scale]] [--clip_chunk=K] PATH...

  python -m vqa_jax.score --model=fast-vqa-b PATH...   (a named model: `vqa-jax models`)

--model=NAME scores with a named pretrained model instead of --checkpoint: its upstream file is
fetched (VQA_JAX_MODELS_MIRROR: from a mirror; VQA_JAX_OFFLINE=1: never), hash-checked and
converted once into $VQA_JAX_CACHE/models/NAME/ (`vqa_jax.pretrained.cache`), which is then read
as --checkpoint (with the upstream calibration).

PATH is a video file or a folder (searched recursively for video files). Without --config, the
config stored with DIR (a run's or a convert_weights output's config.json) is used. DIR is anything
`pretrained.load_params` reads: a `vqa_jax.convert_weights` output, or a trainer workdir (its
latest step; EMA params unless --noema), its `best/`, its `checkpoints/` folder or one step folder.

A video's raw `score` is the model output under the config's reference test protocol
(`config.sampling`: `num_clips_eval` clips of `clip_len` frames at `frame_interval`, grid x grid
fragments of `patch` pixels; FAST-VQA-B: 4 x 32 frames at interval 2, 7 x 7 of 32, paper §8),
sampled deterministically (centred offsets; with `sampling.eval_offsets='random'`, the same
seeded draw for every video): the mean of the local quality map over all its positions and all
clips, reduced in float64 on the host from the float32 map. Beside it, `mos` (the training set's
MOS scale) and `score_01` (in [0, 1]), both higher = better, come from the checkpoint's
calibration (`vqa_jax.scoring.calibration`: a trained run's fitted logistic, or the official rule for
converted upstream FAST-VQA / FasterVQA weights); without one they are null and stderr says why.
Each row also has the file's `size` and `mtime_ns`, and what scored it: `checkpoint` (absolute
path), `checkpoint_digest` (of the restored weights and calibration) and `config_digest` (of the
model, sampling and motion sections; `vqa_jax.scoring.provenance`). An unreadable video gives
`{"path", "error"}` (its reason) and the exit code is 1. A row may have a `warning`: the video
decoded fewer frames than its container lists, is shorter than one clip (its frames wrap round),
or is smaller than the fragment grid (upsampled); stderr counts each kind at the end
(`vqa_jax.scoring.clip_warnings`).

Output files (--jsonl / --csv; `vqa_jax.scoring.score_output`) are never truncated: a file that
already holds rows is refused (exit 2) unless --resume, which keeps its rows, skips the videos it
holds (same path, size, mtime) and appends the others, one row per video as it finishes (flushed
and fsynced). --resume onto rows of another checkpoint or config is refused (exit 2) unless
--allow_mixed_checkpoints. One scorer per output file: a second one on the same file exits 2 at
once, naming the first (a lock beside it, `<file>.lock`, released when the process ends, however).
The JSONL is the record: with both files, the CSV is rebuilt from it at the start, so a kill
between the two writes of a row never leaves a row in one file only. A tqdm bar on stderr shows
videos/s, the ETA and the failure count. --num_shards / --shard_index score every N-th video from
I; each shard writes its own files, and concatenating them (shard 0 first: it alone writes the CSV
header) gives the whole folder's.

Exit codes: 0 every video scored; 1 a video failed, or none was found; 2 a usage error, an unusable
checkpoint or output (before any video is scored); 130 interrupted (Ctrl-C / SIGINT): the rows
finished so far are saved, and one line on stderr says how many and gives the --resume command.

--quality-map=FILE.png draws each clip's time-averaged map over its middle frame and its fragment
mosaic, and the score over time (see `vqa_jax.scoring.quality_map`), on the calibrated scale with fixed
limits (--map_per_video_scale: stretched per video). When the PATHs hold one video the picture is
FILE.png; with several, FILE-<video stem>.png each (FILE-<stem>-2.png, ... when stems repeat); a
folder gets FOLDER/<stem>.png. The JSON line names the picture under "quality_map".

On CPU the clips of a video go through the model one at a time (`--clip_chunk`; XLA:CPU runs a
batch of clips slower than the same clips one by one, BENCHMARKS.md); elsewhere all at once.

A SimpleVQA config (`model.name='simple_vqa'`) scores with `vqa_jax.scoring.simple_vqa_scoring`: the mean
per-frame score of the 1-fps test frames, with motion features from `data.motion_dir` or computed
from the video by `config.motion`'s SlowFast; it draws no quality map.
"""

from __future__ import annotations


import functools
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from vqa_jax.runtime import entry_point
from vqa_jax.scoring import score

# Warnings (e.g. a video re-sampled from fewer frames) but not orbax's INFO lines on stderr.
flags.FLAGS.set_default("verbosity", logging.WARNING)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config whose model and sampling to use "
                                          "(a shipped name or a file); default: the config stored "
                                          "with --checkpoint.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "convert_weights output, or a trainer "
                                  "workdir / its checkpoints/ folder / one step folder.")
_EMA = flags.DEFINE_bool("ema", True, "Trainer checkpoints: score with the EMA params "
                         "(--noema: the raw params). Converted weights have only one set.")
_CSV = flags.DEFINE_string("csv", None, "Write one CSV row per video to this file (with --jsonl: "
                           "rebuilt from it). A file that holds rows is refused unless --resume; "
                           "it is never truncated.")
_JSONL = flags.DEFINE_string("jsonl", None, "Write one JSON line per video to this file. A file "
                             "that holds rows is refused unless --resume; it is never truncated.")
_RESUME = flags.DEFINE_bool("resume", False, "Continue the --jsonl / --csv files: keep their rows, "
                            "skip the videos they hold (same path, size and mtime) and append the "
                            "others.")
_ALLOW_MIXED = flags.DEFINE_bool("allow_mixed_checkpoints", False, "With --resume: append to rows "
                                 "that another checkpoint or config scored (refused otherwise).")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Split the videos into this many shards...")
_SHARD_INDEX = flags.DEFINE_integer("shard_index", 0, "...and score only this one (from 0).")
_CLIP_CHUNK = flags.DEFINE_integer("clip_chunk", -1, "Clips per forward pass (0: all of a "
                                   "video's; -1: 1 on CPU, all elsewhere).")
_QUALITY_MAP = flags.DEFINE_string("quality-map", None, "Draw the local quality map to this PNG "
                                   "(FILE-<stem>.png per video when there are several; a folder: "
                                   "FOLDER/<stem>.png).")
_PER_VIDEO_SCALE = flags.DEFINE_bool("map_per_video_scale", False, "Stretch each picture's colours "
                                     "to its own values instead of the calibrated scale.")
_MODEL = flags.DEFINE_string("model", None, "A named pretrained model (vqa-jax models), e.g. "
                             "fast-vqa-b, instead of --checkpoint: fetched and converted into "
                             "$VQA_JAX_CACHE/models/ first.")


@functools.cache
def model_checkpoint() -> str:
  """--model's converted folder in the cache (fetched and converted once)."""
  from vqa_jax.pretrained import cache  # pylint: disable=g-import-not-at-top
  return cache.ensure_scorer(_MODEL.value)


def checkpoint_path() -> str | None:
  """What to score with: --model's cached conversion, else --checkpoint."""
  return model_checkpoint() if _MODEL.value else _CHECKPOINT.value


chosen_config = entry_point.config_or_stored(_CONFIG, checkpoint_path)


def main(argv):
  """Scores the PATH arguments with the flags' checkpoint or model; exits with score's code."""
  if len(argv) < 2:
    raise app.UsageError("give at least one video file or folder")
  if bool(_MODEL.value) == bool(_CHECKPOINT.value):
    raise app.UsageError("give --checkpoint=DIR or --model=NAME (vqa-jax models), one of them")
  if not 0 <= _SHARD_INDEX.value < _NUM_SHARDS.value:
    raise app.UsageError("need 0 <= --shard_index < --num_shards")
  if _RESUME.value and not (_JSONL.value or _CSV.value):
    raise app.UsageError("--resume continues the --jsonl / --csv files: give one")
  try:
    path = checkpoint_path()
    chosen = chosen_config()
  except (OSError, ValueError, KeyError) as e:  # a download, hash, conversion or config error
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  sys.exit(score.cli(chosen, path, argv[1:], csv_path=_CSV.value, use_ema=_EMA.value,
                     quality_map_path=_QUALITY_MAP.value, jsonl_path=_JSONL.value,
                     resume=_RESUME.value, num_shards=_NUM_SHARDS.value,
                     shard_index=_SHARD_INDEX.value,
                     clip_chunk=None if _CLIP_CHUNK.value < 0 else _CLIP_CHUNK.value,
                     per_video_scale=_PER_VIDEO_SCALE.value,
                     allow_mixed_checkpoints=_ALLOW_MIXED.value,
                     command=score.resume_command(sys.argv)))


if __name__ == "__main__":
  entry_point.run(main, chosen_config)
