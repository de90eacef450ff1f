"""Scores video files with a trained model: one JSON line per video, optional CSV.

  python -m vqa_jax.score --config=configs/fast_vqa_b.py --checkpoint=DIR [--csv=FILE] PATH...

PATH is a video file or a folder (searched recursively for video files). DIR is a params
checkpoint written by `vqa_jax.convert_weights` (`{'params': ...}`). A video's score is the raw
model output: the mean of the local quality map over all positions of all
`config.sampling.num_clips_eval` clips, sampled deterministically (centred offsets). A video that
cannot be read gives `{"path": ..., "error": ...}` and the exit code is 1.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import Any, Callable, Iterable, Iterator

import jax
import ml_collections

from vqa_jax.convert_weights import load_params
from vqa_jax.data import sampling
from vqa_jax.data import video_io
from vqa_jax.models.model import build_model
from vqa_jax.train_step import make_predict_fn

PyTree = Any

VIDEO_EXTENSIONS = frozenset((".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".flv", ".wmv",
                              ".mpg", ".mpeg", ".3gp", ".ts", ".mts"))


def find_videos(paths: Iterable[str]) -> Iterator[str]:
  """Each file path as given; each folder's video files (by extension), recursively, sorted."""
  for path in paths:
    if not os.path.isdir(path):
      yield path
      continue
    for root, dirs, files in os.walk(path):
      dirs.sort()
      for name in sorted(files):
        if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS:
          yield os.path.join(root, name)


def make_scorer(config: ml_collections.ConfigDict, params: PyTree) -> Callable[[str], float]:
  """Builds `score(path) -> float` for `config`'s model and sampling with `params`."""
  model = build_model(config.model)
  predict = jax.jit(make_predict_fn(model.apply))
  variables = {"params": params}

  def score(path: str) -> float:
    clips = sampling.sample_clips(path, config.sampling, config.sampling.num_clips_eval, rng=None)
    return float(predict(variables, clips[None])[0])

  return score


def score_videos(paths: Iterable[str], score: Callable[[str], float]) -> Iterator[dict]:
  """`{'path', 'score'}` per readable video, `{'path', 'error'}` per unreadable one."""
  for path in find_videos(paths):
    try:
      yield {"path": path, "score": score(path)}
    except (video_io.VideoDecodeError, OSError) as e:
      yield {"path": path, "error": str(e)}


def run(config: ml_collections.ConfigDict, checkpoint: str, paths: Iterable[str],
        csv_path: str | None = None, out=sys.stdout) -> int:
  """Scores `paths`, printing JSON lines to `out` (and CSV rows); returns the exit code."""
  score = make_scorer(config, load_params(checkpoint))
  results = []
  for result in score_videos(paths, score):
    print(json.dumps(result), file=out, flush=True)
    results.append(result)
  if csv_path:
    with open(csv_path, "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["path", "score"])
      writer.writerows([r["path"], r["score"]] for r in results if "score" in r)
  failed = [r for r in results if "error" in r]
  if not results:
    print("no videos found", file=sys.stderr)
  return 1 if failed or not results else 0


def main() -> None:
  """Command line: --config, --checkpoint, optional --csv, then video files and folders."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  config = config_flags.DEFINE_config_file("config", None, "Config whose model and sampling "
                                           "to use.")
  checkpoint = flags.DEFINE_string("checkpoint", None, "Params checkpoint directory "
                                   "(vqa_jax.convert_weights output).")
  csv_path = flags.DEFINE_string("csv", None, "Also write path,score rows to this CSV file.")
  flags.mark_flags_as_required(["config", "checkpoint"])

  def run_main(argv):
    if len(argv) < 2:
      raise app.UsageError("give at least one video file or folder")
    sys.exit(run(config.value, checkpoint.value, argv[1:], csv_path.value))

  app.run(run_main)


if __name__ == "__main__":
  main()
