"""The scoring library of `python -m vqa_jax.score` (whose docstring states the rules): videos
found in folders, a checkpoint read and checked, the jitted quality map, one result row per video
written as it finishes (`score_output`), shards, and Ctrl-C as a row count and a resume command.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
from typing import Any, Callable, Iterable, Iterator

import jax
import ml_collections
import numpy as np

from vqa_jax.scoring import calibration as calibration_lib
from vqa_jax.scoring import clip_warnings
from vqa_jax import families
from vqa_jax.convert import pretrained
from vqa_jax.runtime import progress
from vqa_jax.scoring import quality_map as quality_map_lib
from vqa_jax.scoring import provenance
from vqa_jax.scoring import score_output
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data import video_io
from vqa_jax.models.fast_vqa import build_model

PyTree = Any
# apply(clips uint8 (clips, T, S, S, 3)) -> float32 quality map (clips, T', H', W').
MapFn = Callable[[np.ndarray], np.ndarray]

VIDEO_EXTENSIONS = frozenset((".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".flv", ".wmv",
                              ".mpg", ".mpeg", ".3gp", ".ts", ".mts"))
READ_ERRORS = (video_io.VideoDecodeError, OSError)
# Images score as 1-frame clips (the IQA models).
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | video_io.IMAGE_EXTENSIONS
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's code for a Ctrl-C
# warn(path, scored) -> {kind: sentence} (clip_warnings)
WarnFn = Callable[[str, bool], dict[str, str]]


class Interrupted(Exception):
  """Ctrl-C while scoring: how many rows this run wrote and the output files now hold."""

  def __init__(self, scored: int, saved: int, outputs: list[str]):
    super().__init__(f"interrupted after {scored} videos")
    self.scored, self.saved, self.outputs = scored, saved, outputs

  def message(self, command: str) -> str:
    """The one line `score` prints: rows saved and the command that continues the run."""
    if not self.outputs:
      return ("interrupted: no --jsonl / --csv to resume from; the rows printed above are "
              "complete, one per video scored")
    return (f"interrupted: {self.saved} rows saved in {' and '.join(self.outputs)} ({self.scored} "
            f"from this run); continue with: {command}")


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


def load_checkpoint(config: ml_collections.ConfigDict, checkpoint: str,
                    use_ema: bool = True) -> PyTree:
  """The params of `checkpoint` (see `pretrained.load_params`), checked against config's model."""
  return pretrained.load_params(checkpoint, like=families.abstract_variables(config.model)["params"],
                                use_ema=use_ema)


@functools.partial(jax.jit, static_argnums=0)
def _apply_model(model, variables: PyTree, clips: jax.Array) -> jax.Array:
  """The eval-mode quality map; compiled once per model (Flax modules hash by their fields)."""
  return model.apply(variables, clips, train=False)


def default_clip_chunk() -> int:
  """Clips per forward pass: 1 on CPU (XLA:CPU runs a batch slower than its clips one by one,
  BENCHMARKS.md), 0 (all of a video's clips at once) on accelerators."""
  return 1 if jax.default_backend() == "cpu" else 0


def make_map_fn(config: ml_collections.ConfigDict, params: PyTree,
                clip_chunk: int | None = None) -> MapFn:
  """Builds the jitted `apply(clips) -> quality map` of `config`'s model with `params`.

  The clips go through the model `clip_chunk` at a time (None: `default_clip_chunk()`; 0: all at
  once); eval mode has no interaction between clips, so the map is the same either way.
  """
  model = build_model(config.model)
  variables = {"params": params}
  chunk = default_clip_chunk() if clip_chunk is None else clip_chunk

  def apply(clips: np.ndarray) -> np.ndarray:
    step = chunk or clips.shape[0]
    return np.concatenate([np.asarray(_apply_model(model, variables, clips[i:i + step]))
                           for i in range(0, clips.shape[0], step)])

  return apply


def scoring_rng(config: ml_collections.ConfigDict) -> np.random.Generator | None:
  """The test-offset generator of every video: None (centred) unless eval_offsets is 'random'."""
  return clip_sampler.eval_rng(config.sampling, 0)


def sample_test_clips(config: ml_collections.ConfigDict, path: str) -> np.ndarray:
  """The test clips of `path` under `config.sampling`: uint8 (num_clips_eval, clip_len, S, S, 3)."""
  return clip_sampler.sample_clips(path, config.sampling, config.sampling.num_clips_eval,
                               rng=scoring_rng(config))


def map_score(quality_map: np.ndarray) -> float:
  """A video's score: the mean of its quality map over all positions and clips (float64)."""
  return float(np.mean(quality_map, dtype=np.float64))


def video_quality_map(config: ml_collections.ConfigDict, map_fn: MapFn, path: str) -> np.ndarray:
  """The model's local quality map of `path` under the test protocol: (clips, T', H', W')."""
  return map_fn(sample_test_clips(config, path))


def make_scorer(config: ml_collections.ConfigDict, params: PyTree,
                clip_chunk: int | None = None) -> Callable[[str], float]:
  """Builds `score(path) -> float` (raw) for `config`'s model and sampling with `params`."""
  map_fn = make_map_fn(config, params, clip_chunk)
  return lambda path: map_score(video_quality_map(config, map_fn, path))


def quality_map_paths(base: str, videos: list[str]) -> list[str]:
  """PNG paths for `videos`: `base` for one video, else `<base>-<stem>.png`, numbered on repeats.

  A `base` that is a folder (an existing one, or a path ending in a separator) gets
  `<base>/<stem>.png` for every video.
  """
  folder = base.endswith(os.sep) or os.path.isdir(base)
  root, ext = (os.path.join(base, ""), ".png") if folder else os.path.splitext(base)
  ext = ext or ".png"
  if len(videos) == 1 and not folder:
    return [root + ext]
  seen: dict[str, int] = {}
  paths = []
  for video in videos:
    stem = os.path.splitext(os.path.basename(video))[0]
    seen[stem] = seen.get(stem, 0) + 1
    suffix = "" if seen[stem] == 1 else f"-{seen[stem]}"
    paths.append(f"{root}{stem}{suffix}{ext}" if folder else f"{root}-{stem}{suffix}{ext}")
  return paths


def calibrated(raw: float, calibration: calibration_lib.Calibration | None) -> dict:
  """{'score' (raw), 'mos', 'score_01'} of a raw score (None without a calibration)."""
  if calibration is None:
    return {"score": raw, "mos": None, "score_01": None}
  return {"score": raw, **calibration.apply(raw)}


def score_video(config: ml_collections.ConfigDict, map_fn: MapFn, path: str,
                png_path: str | None = None,
                calibration: calibration_lib.Calibration | None = None,
                display: quality_map_lib.Display | None = None) -> dict:
  """`{'path', 'score', 'mos', 'score_01'}` (and `'quality_map'`) of one video; raises on bad
  input. The picture uses `display` (default: the calibration's fixed scale)."""
  clips = sample_test_clips(config, path)
  quality_map = map_fn(clips)
  result = {"path": path, **calibrated(map_score(quality_map), calibration)}
  if png_path:
    frames, indices = quality_map_lib.sampled_frames(path, config.sampling, clips.shape[0],
                                                     scoring_rng(config))
    shown = "" if result["mos"] is None else f", MOS {result['mos']:.3f}"
    shown += "" if result["score_01"] is None else f", score_01 {result['score_01']:.3f}"
    quality_map_lib.draw(png_path, frames, clips[:, clips.shape[1] // 2], quality_map,
                         f"{os.path.basename(path)}: raw {result['score']:.4f}{shown}",
                         display or quality_map_lib.display_for(calibration), indices)
    result["quality_map"] = png_path
  return result


def score_videos(videos: list[str], score: Callable[[str, str | None], dict],
                 png_paths: list[str | None] | None = None, warn: WarnFn | None = None,
                 extra: dict | None = None) -> Iterator[dict]:
  """`score(path, png_path)` per video, or `{'path', 'error'}` for one that cannot be read;
  each row also names the file's size and mtime_ns (what --resume compares), has a `warning`
  (the sentences of `warn(path, scored)`, '; '-joined; default: only a video that decoded fewer
  frames than its container lists) when there is one, and ends with `extra`'s fields."""
  warn = warn or (lambda path, scored: clip_warnings.shortfall_warnings(path))
  for video, png_path in zip(videos, png_paths or [None] * len(videos)):
    _, size, mtime_ns = score_output.file_key(video)
    try:
      result = score(video, png_path)
    except READ_ERRORS as e:
      result = {"path": video, "error": f"{type(e).__name__}: {e}"}
    found = warn(video, "error" not in result)
    yield {**result, **({"warning": "; ".join(found.values())} if found else {}), "size": size,
           "mtime_ns": mtime_ns, **(extra or {})}


def shard(videos: list, num_shards: int, shard_index: int) -> list:
  """Every `num_shards`-th video from `shard_index` (shards are disjoint and cover the list)."""
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise ValueError(f"need 0 <= shard_index < num_shards, got {shard_index} of {num_shards}")
  return videos[shard_index::num_shards]


@contextlib.contextmanager
def reading_checkpoint(checkpoint: str) -> Iterator[None]:
  """Turns any error raised inside (orbax, tensorstore, OS: a damaged checkpoint, a calibration
  file that is not JSON) into a CheckpointError naming `checkpoint`."""
  try:
    yield
  except pretrained.CheckpointError:
    raise
  except Exception as e:  # pylint: disable=broad-exception-caught
    raise pretrained.CheckpointError(
        f"{checkpoint}: cannot be read ({type(e).__name__}: {e})") from e


def load_scorer(config: ml_collections.ConfigDict, checkpoint: str, use_ema: bool,
                clip_chunk: int | None = None,
                display: quality_map_lib.Display | None = None,
                per_video_scale: bool = False) -> tuple[Callable[[str, str | None], dict], str]:
  """(`score(path, png_path) -> result` of the config's model family with the checkpoint and its
  calibration loaded, the digest of those variables and calibration: `provenance.tree_digest`);
  any failure to read the checkpoint is a CheckpointError."""
  with reading_checkpoint(checkpoint):
    calibration, described = calibration_lib.for_checkpoint(config, checkpoint, use_ema)
    print(described, file=sys.stderr)
    calibration_json = calibration.to_json() if calibration else None
    if families.family_name(config.model) == "simple_vqa":
      from vqa_jax.scoring import simple_vqa_scoring  # pylint: disable=g-import-not-at-top
      variables = simple_vqa_scoring.load_variables(config, checkpoint, use_ema)
      scorer = simple_vqa_scoring.make_scorer(config, variables)
      return (lambda path, png_path: {"path": path, **calibrated(scorer(path), calibration)},
              provenance.tree_digest(variables, calibration_json))
    params = load_checkpoint(config, checkpoint, use_ema)
  map_fn = make_map_fn(config, params, clip_chunk)
  display = display or quality_map_lib.display_for(calibration, per_video_scale)
  return (lambda path, png_path: score_video(config, map_fn, path, png_path, calibration, display),
          provenance.tree_digest(params, calibration_json))


def progress_bar(total: int):
  """The tqdm bar of a scoring run (videos/s, ETA, failures) on stderr."""
  return progress.tqdm_bar(total, "video", postfix={"failed": 0})


def run(config: ml_collections.ConfigDict, checkpoint: str, paths: Iterable[str],
        csv_path: str | None = None, out=sys.stdout, use_ema: bool = True,
        quality_map_path: str | None = None, jsonl_path: str | None = None,
        resume: bool = False, num_shards: int = 1, shard_index: int = 0,
        clip_chunk: int | None = None, per_video_scale: bool = False,
        allow_mixed_checkpoints: bool = False) -> int:
  """Scores `paths`, printing JSON lines to `out` and appending them to the result files as
  each video finishes (and PNGs); returns the exit code (0, or 1 when a video failed or none was
  found). The output files are locked and checked (never truncated: `score_output`), and the
  checkpoint read, before any video is scored; Ctrl-C raises `Interrupted`."""
  if quality_map_path and families.family_name(config.model) == "simple_vqa":
    raise ValueError("--quality-map draws FAST-VQA's local quality map; SimpleVQA has none")
  videos = list(find_videos(paths))
  png_paths = quality_map_paths(quality_map_path, videos) if quality_map_path and videos else None
  for out_path in png_paths or []:
    score_output.prepare_folder(out_path)
  files, before = None, 0
  try:
    with score_output.ResultFiles(jsonl_path, csv_path, resume,
                                  write_header=shard_index == 0) as files:
      before = len(files.rows)
      failed, tally = _score_into(files, config, checkpoint, videos, png_paths, out, use_ema,
                                  num_shards, shard_index, clip_chunk, per_video_scale,
                                  allow_mixed_checkpoints)
    for line in tally.lines():
      print(line, file=sys.stderr)
  except KeyboardInterrupt:
    if files is None:
      raise
    saved = files.saved()
    raise Interrupted(saved - before, saved, files.paths) from None
  if not videos:
    print("no videos found", file=sys.stderr)
  return 1 if not videos or failed else 0


def _score_into(files: score_output.ResultFiles, config: ml_collections.ConfigDict,
                checkpoint: str, videos: list[str], png_paths: list[str] | None, out,
                use_ema: bool, num_shards: int, shard_index: int, clip_chunk: int | None,
                per_video_scale: bool, allow_mixed: bool
                ) -> tuple[int, clip_warnings.Tally]:
  """`run`'s work once its files are open: loads the checkpoint, checks the rows' provenance,
  scores the shard's pending videos into `files`; (failures, warnings tally)."""
  pairs = shard(list(zip(videos, png_paths or [None] * len(videos))), num_shards, shard_index)
  params_key = pretrained.locate(checkpoint).params_key(use_ema)
  print(f"scoring with {pretrained.describe(checkpoint)}, '{params_key}'", file=sys.stderr)
  score_one, checkpoint_digest = load_scorer(config, checkpoint, use_ema, clip_chunk,
                                             per_video_scale=per_video_scale)
  origin = provenance.fields(checkpoint, checkpoint_digest, provenance.config_digest(config))
  files.check_provenance(origin, allow_mixed)
  todo = set(score_output.pending([v for v, _ in pairs], files.done))
  if len(todo) < len(pairs):
    print(f"{len(pairs) - len(todo)} of {len(pairs)} videos already in the output: skipped",
          file=sys.stderr)
  pairs = [(v, p) for v, p in pairs if v in todo]
  tally = clip_warnings.Tally()

  def warn(path: str, scored: bool) -> dict[str, str]:
    return tally.count(clip_warnings.video_warnings(path, config.sampling, scored))

  failed = 0
  with progress_bar(len(pairs)) as bar:
    for result in score_videos([v for v, _ in pairs], score_one, [p for _, p in pairs], warn,
                               origin):
      print(json.dumps(result), file=out, flush=True)
      files.write(result)
      failed += "error" in result
      bar.set_postfix(failed=failed, refresh=False)
      bar.update()
  return failed, tally


def resume_command(argv: list[str]) -> str:
  """The command line that continues `argv`'s scoring run: the same arguments with --resume."""
  program = argv[0] if argv and argv[0].startswith("vqa-jax ") else "python -m vqa_jax.score"
  kept = [a for a in argv[1:] if a.split("=")[0] not in ("--resume", "--noresume")]
  return f"{program} --resume {shlex.join(kept)}".rstrip()


def cli(config: ml_collections.ConfigDict, checkpoint: str, paths: list[str],
        command: str | None = None, **kwargs) -> int:
  """`run` with its up-front errors as exit code 2 (checkpoint or output unusable, bad flags) and
  Ctrl-C as one line naming the rows saved and the `command` that resumes (exit code 130)."""
  try:
    return run(config, checkpoint, paths, **kwargs)
  except (pretrained.CheckpointError, *score_output.ERRORS) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except Interrupted as e:
    print(e.message(command or resume_command(sys.argv)), file=sys.stderr)
    return EXIT_INTERRUPTED
  except KeyboardInterrupt:
    print("interrupted before scoring started; no row was written", file=sys.stderr)
    return EXIT_INTERRUPTED
