"""Scores video files with a trained model: one JSON line per video, optional CSV and map PNGs.

  python -m vqa_jax.score --config=configs/fast_vqa_b.py --checkpoint=DIR [--noema] \
      [--csv=FILE] [--quality-map=FILE.png] PATH...

PATH is a video file or a folder (searched recursively for video files). DIR is anything
`pretrained.load_params` reads: a `vqa_jax.convert_weights` output, or a trainer workdir (its
latest step; EMA params unless --noema), its `checkpoints/` folder or one step folder.

A video's score is the raw model output under the config's reference test protocol
(`config.sampling`: `num_clips_eval` clips of `clip_len` frames at `frame_interval`, grid x grid
fragments of `patch` pixels; FAST-VQA-B: 4 x 32 frames at interval 2, 7 x 7 of 32, paper §8),
sampled deterministically (centred offsets; with `sampling.eval_offsets='random'`, the same
seeded draw for every video): the mean of the local quality map over all its positions and all
clips, reduced in float64 on the host from the float32 map. Each readable video gives
`{"path", "score"}`; an unreadable one gives `{"path", "error"}` and the exit code is 1.

--quality-map=FILE.png draws each clip's time-averaged map over its middle frame and its fragment
mosaic (see `vqa_jax.quality_map`). When the PATHs hold one video the picture is FILE.png; with
several, FILE-<video stem>.png each (FILE-<stem>-2.png, ... when stems repeat). The JSON line
names the picture under "quality_map".

A SimpleVQA config (`model.name='simple_vqa'`) scores with `vqa_jax.simple_vqa_scoring`: the mean
per-frame score of the 1-fps test frames, with motion features from `data.motion_dir` or computed
from the video by `config.motion`'s SlowFast; it draws no quality map.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
from typing import Any, Callable, Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax import families
from vqa_jax import pretrained
from vqa_jax import quality_map as quality_map_lib
from vqa_jax.data import sampling
from vqa_jax.data import video_io
from vqa_jax.models.model import build_model

PyTree = Any
# apply(clips uint8 (clips, T, S, S, 3)) -> float32 quality map (clips, T', H', W').
MapFn = Callable[[np.ndarray], np.ndarray]

VIDEO_EXTENSIONS = frozenset((".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".flv", ".wmv",
                              ".mpg", ".mpeg", ".3gp", ".ts", ".mts"))
READ_ERRORS = (video_io.VideoDecodeError, OSError)
# Images score as 1-frame clips (the IQA models).
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | video_io.IMAGE_EXTENSIONS


def find_videos(paths: Iterable[str]) -> Iterator[str]:
  """Each file path as given; each folder's video files (by extension), recursively, sorted."""
  for path in paths:
    if not os.path.isdir(path):
      yield path
      continue
    for root, dirs, files in os.walk(path):
      dirs.sort()
      for name in sorted(files):
        if os.path.splitext(name)[1].lower() in MEDIA_EXTENSIONS:
          yield os.path.join(root, name)


def abstract_params(config: ml_collections.ConfigDict) -> PyTree:
  """Shapes of the params of `config`'s model, initialised on one test clip (nothing computed)."""
  model = build_model(config.model)
  size = config.sampling.grid * config.sampling.patch
  clip = jax.ShapeDtypeStruct((1, config.sampling.clip_len, size, size, 3), jnp.uint8)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), clip)["params"]


def load_checkpoint(config: ml_collections.ConfigDict, checkpoint: str,
                    use_ema: bool = True) -> PyTree:
  """The params of `checkpoint` (see `pretrained.load_params`), checked against config's model."""
  return pretrained.load_params(checkpoint, like=abstract_params(config), use_ema=use_ema)


@functools.partial(jax.jit, static_argnums=0)
def _apply_model(model, variables: PyTree, clips: jax.Array) -> jax.Array:
  """The eval-mode quality map; compiled once per model (Flax modules hash by their fields)."""
  return model.apply(variables, clips, train=False)


def make_map_fn(config: ml_collections.ConfigDict, params: PyTree) -> MapFn:
  """Builds the jitted `apply(clips) -> quality map` of `config`'s model with `params`."""
  model = build_model(config.model)
  variables = {"params": params}
  return lambda clips: np.asarray(_apply_model(model, variables, clips))


def scoring_rng(config: ml_collections.ConfigDict) -> np.random.Generator | None:
  """The test-offset generator of every video: None (centred) unless eval_offsets is 'random'."""
  return sampling.eval_rng(config.sampling, 0)


def sample_test_clips(config: ml_collections.ConfigDict, path: str) -> np.ndarray:
  """The test clips of `path` under `config.sampling`: uint8 (num_clips_eval, clip_len, S, S, 3)."""
  return sampling.sample_clips(path, config.sampling, config.sampling.num_clips_eval,
                               rng=scoring_rng(config))


def map_score(quality_map: np.ndarray) -> float:
  """A video's score: the mean of its quality map over all positions and clips (float64)."""
  return float(np.mean(quality_map, dtype=np.float64))


def video_quality_map(config: ml_collections.ConfigDict, map_fn: MapFn, path: str) -> np.ndarray:
  """The model's local quality map of `path` under the test protocol: (clips, T', H', W')."""
  return map_fn(sample_test_clips(config, path))


def make_scorer(config: ml_collections.ConfigDict, params: PyTree) -> Callable[[str], float]:
  """Builds `score(path) -> float` for `config`'s model and sampling with `params`."""
  map_fn = make_map_fn(config, params)
  return lambda path: map_score(video_quality_map(config, map_fn, path))


def quality_map_paths(base: str, videos: list[str]) -> list[str]:
  """PNG paths for `videos`: `base` for one video, else `<base>-<stem>.png`, numbered on repeats."""
  root, ext = os.path.splitext(base)
  ext = ext or ".png"
  if len(videos) == 1:
    return [root + ext]
  seen: dict[str, int] = {}
  paths = []
  for video in videos:
    stem = os.path.splitext(os.path.basename(video))[0]
    seen[stem] = seen.get(stem, 0) + 1
    suffix = "" if seen[stem] == 1 else f"-{seen[stem]}"
    paths.append(f"{root}-{stem}{suffix}{ext}")
  return paths


def score_video(config: ml_collections.ConfigDict, map_fn: MapFn, path: str,
                png_path: str | None = None) -> dict:
  """`{'path', 'score'}` (and `'quality_map'` when drawn) for one video; raises on bad input."""
  clips = sample_test_clips(config, path)
  quality_map = map_fn(clips)
  result = {"path": path, "score": map_score(quality_map)}
  if png_path:
    frames = quality_map_lib.middle_frames(path, config.sampling, clips.shape[0],
                                           scoring_rng(config))
    quality_map_lib.draw(png_path, frames, clips[:, clips.shape[1] // 2], quality_map,
                         f"{os.path.basename(path)}: score {result['score']:.4f}")
    result["quality_map"] = png_path
  return result


def score_videos(videos: list[str], score: Callable[[str, str | None], dict],
                 png_paths: list[str | None] | None = None) -> Iterator[dict]:
  """`score(path, png_path)` per video, or `{'path', 'error'}` for one that cannot be read."""
  for video, png_path in zip(videos, png_paths or [None] * len(videos)):
    try:
      yield score(video, png_path)
    except READ_ERRORS as e:
      yield {"path": video, "error": str(e)}


def write_csv(csv_path: str, results: list[dict]) -> None:
  """Writes `path,score` rows of the scored videos."""
  with open(csv_path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["path", "score"])
    writer.writerows([r["path"], r["score"]] for r in results if "score" in r)


def _video_scorer(config: ml_collections.ConfigDict, checkpoint: str, use_ema: bool,
                  quality_map_path: str | None) -> Callable[[str, str | None], dict]:
  """`score(path, png_path) -> result` of the config's model family with the checkpoint loaded."""
  if families.family_name(config.model) == "simple_vqa":
    from vqa_jax import simple_vqa_scoring  # pylint: disable=g-import-not-at-top
    if quality_map_path:
      raise ValueError("--quality-map draws FAST-VQA's local quality map; SimpleVQA has none")
    scorer = simple_vqa_scoring.make_scorer(
        config, simple_vqa_scoring.load_variables(config, checkpoint, use_ema))
    return lambda path, png_path: {"path": path, "score": scorer(path)}
  map_fn = make_map_fn(config, load_checkpoint(config, checkpoint, use_ema))
  return lambda path, png_path: score_video(config, map_fn, path, png_path)


def run(config: ml_collections.ConfigDict, checkpoint: str, paths: Iterable[str],
        csv_path: str | None = None, out=sys.stdout, use_ema: bool = True,
        quality_map_path: str | None = None) -> int:
  """Scores `paths`, printing JSON lines to `out` (and CSV rows, PNGs); returns the exit code."""
  params_key = pretrained.locate(checkpoint).params_key(use_ema)
  print(f"scoring with {pretrained.describe(checkpoint)}, '{params_key}'", file=sys.stderr)
  score_one = _video_scorer(config, checkpoint, use_ema, quality_map_path)
  videos = list(find_videos(paths))
  png_paths = quality_map_paths(quality_map_path, videos) if quality_map_path and videos else None
  results = []
  for result in score_videos(videos, score_one, png_paths):
    print(json.dumps(result), file=out, flush=True)
    results.append(result)
  if csv_path:
    write_csv(csv_path, results)
  if not results:
    print("no videos found", file=sys.stderr)
  return 1 if not results or any("error" in r for r in results) else 0


def main() -> None:
  """Command line: --config, --checkpoint, --ema, --csv, --quality-map, then files and folders."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  # Warnings (e.g. a video re-sampled from fewer frames) but not orbax's INFO lines on stderr.
  flags.FLAGS.set_default("verbosity", logging.WARNING)
  config = config_flags.DEFINE_config_file("config", None, "Config whose model and sampling "
                                           "to use.")
  checkpoint = flags.DEFINE_string("checkpoint", None, "convert_weights output, or a trainer "
                                   "workdir / its checkpoints/ folder / one step folder.")
  ema = flags.DEFINE_bool("ema", True, "Trainer checkpoints: score with the EMA params "
                          "(--noema: the raw params). Converted weights have only one set.")
  csv_path = flags.DEFINE_string("csv", None, "Also write path,score rows to this CSV file.")
  map_path = flags.DEFINE_string("quality-map", None, "Draw the local quality map to this PNG "
                                 "(FILE-<stem>.png per video when there are several).")
  flags.mark_flags_as_required(["config", "checkpoint"])

  def run_main(argv):
    if len(argv) < 2:
      raise app.UsageError("give at least one video file or folder")
    try:
      code = run(config.value, checkpoint.value, argv[1:], csv_path.value, use_ema=ema.value,
                 quality_map_path=map_path.value)
    except pretrained.CheckpointError as e:
      print(f"error: {e}", file=sys.stderr)
      code = 2
    sys.exit(code)

  app.run(run_main)


if __name__ == "__main__":
  main()
