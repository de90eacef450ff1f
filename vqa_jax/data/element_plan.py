"""The elements both input loaders yield: which video each stream position reads, and how.

TensorFlow-free: the tf.data loader (`input_pipeline`) and the grain loader (`grain_pipeline`) run
the same `ElementPlan`, so for a config, seed and start step they yield bit-identical batches.

Training reads an endless stream of element positions g = 0, 1, 2, ...: position g belongs to
epoch e = g // N (N videos) and visits entry permutation_e[g % N], where permutation_e is drawn
from `np.random.default_rng([seed, e])`; its sampling randomness comes from
`SeedSequence(seed, spawn_key=(g,))`. Step s is positions [s * B, (s + 1) * B), so a batch may
straddle two epochs, every video is seen once per epoch, and a run started at any step yields
exactly the batches of an uninterrupted run (no loader state needs checkpointing).

Multi-host (`process_index`, `process_count`, by default jax's): `batch_size` is the global batch
B; each process reads its B / P slots of every global batch (`host_split`), so the hosts' batches
concatenated in process order are the single-host global batch, and each host decodes only its
share of the file list. Evaluation pads to whole global batches, so every host yields the same
number of batches; `host_split.gather_in_order` puts per-host results back in file order.

Evaluation offsets: centred (deterministic) by default; with `sampling.eval_offsets = 'random'`
video i is sampled with `sampling.eval_rng(sampling, i)` (seeded by `sampling.eval_seed`), the
reference's stochastic test protocol made reproducible and independent of the host layout.

Augmentation (`augment`, training only): 'autoaugment' transforms each decoded clip before the
fragments are cut, drawing from the element's generator (`augment.augment_clip`).

Bad videos (`on_bad_video`): with 'error' (the default) a video that fails to decode stops the
loader with a VideoDecodeError naming it. With 'skip' each bad video is logged once and
recorded in a `BadVideoLog`; training substitutes the next decodable entry of the list (entry
index + 1, + 2, ... modulo N, with the position's own sampling generator), so every batch slot
holds a real video and the result is deterministic; evaluation keeps the slot with a zero video
and `valid=False`, so the bad video is left out of the metrics.

Model inputs (`MODEL_INPUTS`): every element has `video` (the sampler's clips or frames); with a
`motion.MotionFeatures` (SimpleVQA) it also has `motion`, float32 (clip_len, D) per video, loaded
beside the frames. Unusable motion features count as a bad video (the error names the feature
file), and the plans list all of them up front (`MotionFeatures.check`).

NVDEC (`data.decoder` 'nvdec' / 'hybrid', `nvdec_pipeline`): `ElementPlan.load_with(sampler)`
loads the same elements (entries, generators, bad-video policy) with another clip sampler, one
that decodes on the GPU and cuts the fragments there.

Decoding is single-threaded in every decode worker (`single_threaded_decoding`): N independent
decodes beat N oversubscribed ones (+29% on 15 workers of the GPU host, BENCHMARKS.md).
"""

from collections.abc import Callable, Mapping
import dataclasses
import functools
import os
import threading
from typing import Any

from absl import logging
import numpy as np

from vqa_jax.config import validation
from vqa_jax.config.choices import BAD_VIDEO_POLICIES
from vqa_jax.config.choices import FRAMES_1FPS
from vqa_jax.config.config_base import sampling_fields
from vqa_jax.data import host_split
from vqa_jax.data import labels
from vqa_jax.data import motion as motion_lib
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data import video_io

_MAX_LISTED_MISSING = 20
# Batch keys that are model inputs, in the order the models take them.
MODEL_INPUTS = ("video", "motion")
# FFmpeg's decoder threads per capture: one, so that N decode workers use N cores without contention.
FFMPEG_CAPTURE_OPTIONS = "threads;1"

# Maps an element position to (entry index, sampling rng or None for centred sampling).
Locator = Callable[[int], tuple[int, np.random.Generator | None]]
# name -> (shape, dtype) of one element's arrays.
ElementSpec = dict[str, tuple[tuple[int, ...], Any]]


def single_threaded_decoding() -> None:
  """Makes this process decode with one OpenCV and one FFmpeg thread (call before opening videos)."""
  os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", FFMPEG_CAPTURE_OPTIONS)
  import cv2  # pylint: disable=g-import-not-at-top  (video_io imports it anyway)
  cv2.setNumThreads(1)


def host_cores() -> int:
  """The cores this process may run on (its CPU affinity where the OS tells it)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def default_workers(workers: int) -> int:
  """`data.workers` resolved: -1 is the host's cores, 0 decodes in the main process, N is N."""
  validation.check_workers(workers)
  if workers == -1:
    return host_cores()
  return workers


class PathReasons:
  """Thread-safe {path: reason}, each path's first reason kept: `count`, `reasons`."""

  def __init__(self):
    self._lock = threading.Lock()
    self._reasons: dict[str, str] = {}

  def _add(self, path: str, reason: str) -> bool:
    """Records `reason` for `path` unless it has one; whether this was the path's first."""
    with self._lock:
      first = path not in self._reasons
      self._reasons.setdefault(path, reason)
    return first

  @property
  def count(self) -> int:
    """The number of distinct paths recorded."""
    with self._lock:
      return len(self._reasons)

  @property
  def reasons(self) -> dict[str, str]:
    """A copy of {path: reason}."""
    with self._lock:
      return dict(self._reasons)


class BadVideoLog(PathReasons):
  """Thread-safe record of the videos that failed to decode: `count`, `reasons` {path: reason}.

  A copy unpickled in a loader's worker process records without logging: the parent process
  merges the worker's records into its own log (`record`), which logs each path once.
  """

  def __init__(self):
    super().__init__()
    self._announce = True

  def __getstate__(self):
    return {"reasons": self.reasons}

  def __setstate__(self, state):
    self._lock = threading.Lock()
    self._reasons = dict(state["reasons"])
    self._announce = False

  def record(self, path: str, reason: str) -> None:
    """Records a decode failure, logging a warning the first time `path` fails."""
    if self._add(path, reason) and self._announce:
      logging.warning("skipping bad video %s: %s", path, reason)

  def is_bad(self, path: str) -> bool:
    """Whether `path` has already failed to decode."""
    with self._lock:
      return path in self._reasons

  def summary(self) -> str:
    """One line for an epoch or evaluation summary, e.g. '2 videos skipped (bad input)'."""
    count = self.count
    return f"{count} video{'' if count == 1 else 's'} skipped (bad input)"


def check_policy(on_bad_video: str) -> None:
  """Raises ValueError unless `on_bad_video` is one of BAD_VIDEO_POLICIES."""
  if on_bad_video not in BAD_VIDEO_POLICIES:
    raise ValueError(f"on_bad_video must be one of {BAD_VIDEO_POLICIES}, got {on_bad_video!r}")


def check_videos_exist(entries: list[labels.Entry]) -> None:
  """Raises FileNotFoundError listing (up to 20 of) the missing videos, each with why (link loop, ...)."""
  if not entries:
    raise ValueError("no entries to build a dataset from")
  missing = labels.missing_videos(entries)
  if missing:
    listed = "\n  ".join(f"{path} ({video_io.file_problem(path) or 'missing'})"
                          for path in missing[:_MAX_LISTED_MISSING])
    raise FileNotFoundError(f"{len(missing)} of {len(entries)} videos are missing (first "
                            f"{min(len(missing), _MAX_LISTED_MISSING)} listed):\n  {listed}")


def epoch_order(seed: int, epoch: int, num_entries: int) -> np.ndarray:
  """The visiting order of the entries in one training epoch."""
  return np.random.default_rng([seed, epoch]).permutation(num_entries)


def element_rng(seed: int, position: int) -> np.random.Generator:
  """The sampling generator of the training element at global stream position `position`."""
  return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(position,)))


class _TrainLocator:
  """Locator over the epoch-permuted training stream (caches recent epochs' orders, picklable)."""

  def __init__(self, seed: int, num_entries: int):
    self._seed, self._num_entries = seed, num_entries
    self._order = functools.lru_cache(maxsize=2)(self._epoch_order)

  def __getstate__(self):
    return {"seed": self._seed, "num_entries": self._num_entries}

  def __setstate__(self, state):
    self.__init__(state["seed"], state["num_entries"])

  def _epoch_order(self, epoch: int) -> np.ndarray:
    return epoch_order(self._seed, epoch, self._num_entries)

  def __call__(self, position: int) -> tuple[int, np.random.Generator]:
    epoch, offset = divmod(position, self._num_entries)
    return int(self._order(epoch)[offset]), element_rng(self._seed, position)


class _EvalLocator:
  """Locator of evaluation position q: video q % N with its evaluation generator."""

  def __init__(self, sampling: Mapping[str, Any], num_entries: int):
    self._sampling, self._num_entries = sampling, num_entries

  def __call__(self, position: int) -> tuple[int, np.random.Generator | None]:
    index = position % self._num_entries
    return index, clip_sampler.eval_rng(self._sampling, index)


def _video_shape(sampling: Mapping[str, Any], num_clips: int, squeeze: bool) -> tuple[int, ...]:
  """Shape of one element's video: (num_clips, T, S, S, 3), without the clip axis if `squeeze`.

  S is grid * patch for the fragment samplers and `crop` for 'frames_1fps'.
  """
  if sampling_fields(sampling)["method"] == FRAMES_1FPS:
    side = sampling["crop"]
  else:
    side = sampling["grid"] * sampling["patch"]
  clip_shape = (sampling["clip_len"], side, side, 3)
  return clip_shape if squeeze else (num_clips, *clip_shape)


def _input_spec(sampling: Mapping[str, Any], num_clips: int, squeeze: bool,
                motion: motion_lib.MotionFeatures | None) -> ElementSpec:
  """The model inputs of one element: `video`, plus `motion` (clip_len, D) when given."""
  spec = {"video": (_video_shape(sampling, num_clips, squeeze), np.uint8)}
  if motion is not None:
    spec["motion"] = ((motion.num_frames, motion.dim), np.float32)
  return spec


def _check_inputs(entries: list[labels.Entry], sampling: Mapping[str, Any],
                  motion: motion_lib.MotionFeatures | None, on_bad_video: str) -> None:
  """Fails early on a bad policy or config, missing videos, or (with 'error') motion features."""
  check_policy(on_bad_video)
  validation.check_sampling(sampling)
  check_videos_exist(entries)
  if motion is not None:
    if motion.num_frames != sampling["clip_len"]:
      raise ValueError(f"motion features for {motion.num_frames} frames, but the sampler takes "
                       f"clip_len={sampling['clip_len']}")
    motion.check(entries, on_bad_video)


def _process_layout(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  """(process_index, process_count), jax's values for those not given."""
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top  (only needed for the defaults)
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  return process_index, process_count


@dataclasses.dataclass
class _ElementLoader:
  """position -> element {inputs..., label, index[, valid]}, applying the bad-video policy.

  With 'skip', `substitute` tries entries index + 1, + 2, ... (mod N) after a failure, each with
  the position's sampling generator drawn afresh; otherwise the element's inputs become zeros with
  valid=False. Videos already recorded as bad are not decoded again. With `num_valid` (evaluation)
  the element has `valid`: decoded and position < num_valid (padding is invalid).
  """

  entries: list[labels.Entry]
  sampling: Mapping[str, Any]
  num_clips: int
  locate: Locator
  spec: ElementSpec
  on_bad_video: str
  bad_videos: BadVideoLog
  substitute: bool
  augment: str = "none"
  motion: motion_lib.MotionFeatures | None = None
  num_valid: int | None = None
  # (path, sampling, num_clips, rng, augment) -> clips: the CPU sampler, or NVDEC's on the device.
  sampler: Callable[..., Any] = clip_sampler.sample_clips

  def _sample(self, position: int, index: int) -> dict[str, np.ndarray]:
    _, rng = self.locate(position)
    path = self.entries[index].path
    inputs = {"motion": self.motion.load(path)} if self.motion is not None else {}
    video = self.sampler(path, self.sampling, self.num_clips, rng, self.augment)
    return {"video": video.reshape(self.spec["video"][0]), **inputs}

  def _element(self, position: int, index: int, inputs: dict[str, np.ndarray],
               ok: bool) -> dict[str, np.ndarray]:
    element = {**inputs, "label": np.float32(self.entries[index].mos), "index": np.int32(index)}
    if self.num_valid is not None:
      element["valid"] = np.bool_(ok and position < self.num_valid)
    return element

  def __call__(self, position: int) -> dict[str, np.ndarray]:
    first, _ = self.locate(position)
    if self.on_bad_video == "error":
      return self._element(position, first, self._sample(position, first), True)
    num_entries = len(self.entries)
    for k in range(num_entries if self.substitute else 1):
      index = (first + k) % num_entries
      if self.bad_videos.is_bad(self.entries[index].path):
        continue
      try:
        return self._element(position, index, self._sample(position, index), True)
      except video_io.VideoDecodeError as e:
        self.bad_videos.record(self.entries[index].path, e.reason)
    if self.substitute:
      raise video_io.VideoDecodeError(self.entries[first].path, f"no substitute: all "
                                      f"{num_entries} videos of the dataset failed to decode")
    zeros = {k: np.zeros(s, d) for k, (s, d) in self.spec.items()}
    return self._element(position, first, zeros, False)


@dataclasses.dataclass
class ElementPlan:
  """What a loader reads: `positions` (batches, local batch), `load(position) -> element`, `spec`.

  `spec` gives every element array's (shape, dtype), in batch-key order. Decode failures under
  'skip' are recorded in `bad_videos` (the loaders merge their workers' records into it).
  """

  positions: np.ndarray
  load: Callable[[int], dict[str, np.ndarray]]
  spec: ElementSpec
  bad_videos: BadVideoLog

  @property
  def local_batch(self) -> int:
    """The examples per batch this process reads."""
    return self.positions.shape[1]

  def load_with(self, sampler: Callable[..., Any]) -> Callable[[int], dict[str, Any]]:
    """`load` with another clip sampler of `clip_sampler.sample_clips`'s signature (NVDEC's).

    Locating, the sampling generators and the bad-video policy stay the plan's.
    """
    if not isinstance(self.load, _ElementLoader):
      raise TypeError(f"this plan's load ({type(self.load).__name__}) takes no other sampler")
    return dataclasses.replace(self.load, sampler=sampler)


def _scalar_spec(evaluation: bool) -> ElementSpec:
  """The per-element scalars: label, index, and for evaluation valid."""
  spec = {"label": ((), np.float32), "index": ((), np.int32)}
  if evaluation:
    spec["valid"] = ((), np.bool_)
  return spec


def train_plan(entries: list[labels.Entry], sampling: Mapping[str, Any], batch_size: int,
               seed: int, num_steps: int, start_step: int = 0, num_clips: int = 1,
               on_bad_video: str = "error", bad_videos: BadVideoLog | None = None,
               augment: str = "none", process_index: int | None = None,
               process_count: int | None = None,
               motion: motion_lib.MotionFeatures | None = None) -> ElementPlan:
  """The deterministic, resumable training elements of steps [start_step, num_steps).

  `batch_size` is the global batch; this process reads its batch_size / process_count slice of
  each. With on_bad_video='skip' a bad video is replaced by the next decodable entry and recorded
  in `bad_videos`. `augment` is 'none' or 'autoaugment'. Elements: video, label, index, and with
  `motion` the (clip_len, D) `motion`.
  """
  if not 0 <= start_step <= num_steps:
    raise ValueError(f"need 0 <= start_step ({start_step}) <= num_steps ({num_steps})")
  _check_inputs(entries, sampling, motion, on_bad_video)
  process_index, process_count = _process_layout(process_index, process_count)
  local_batch = host_split.local_batch_size(batch_size, process_count)
  inputs = _input_spec(sampling, num_clips, num_clips == 1, motion)
  bad_videos = BadVideoLog() if bad_videos is None else bad_videos
  load = _ElementLoader(entries, sampling, num_clips, _TrainLocator(seed, len(entries)), inputs,
                        on_bad_video, bad_videos, substitute=True, augment=augment, motion=motion)
  positions = host_split.host_positions(start_step, num_steps, batch_size, process_index,
                                        process_count)
  return ElementPlan(positions.reshape(-1, local_batch), load,
                     {**inputs, **_scalar_spec(False)}, bad_videos)


def eval_plan(entries: list[labels.Entry], sampling: Mapping[str, Any], batch_size: int,
              num_clips: int, on_bad_video: str = "error", bad_videos: BadVideoLog | None = None,
              process_index: int | None = None, process_count: int | None = None,
              motion: motion_lib.MotionFeatures | None = None) -> ElementPlan:
  """Deterministic evaluation elements in file order; the last batch is padded with valid=False.

  `batch_size` is the global batch; this process reads its batch_size / process_count slice of
  each global batch (every process the same number of batches; see `host_split`). Offsets are
  centred unless `sampling.eval_offsets` is 'random'. With on_bad_video='skip' a bad video keeps
  its slot with valid=False (a zero video) and is recorded in `bad_videos`. With `motion` each
  element also has its video's `motion` (clip_len, D), one per video (no clips axis).
  """
  _check_inputs(entries, sampling, motion, on_bad_video)
  process_index, process_count = _process_layout(process_index, process_count)
  local_batch = host_split.local_batch_size(batch_size, process_count)
  num_entries = len(entries)
  inputs = _input_spec(sampling, num_clips, False, motion)
  bad_videos = BadVideoLog() if bad_videos is None else bad_videos
  load = _ElementLoader(entries, sampling, num_clips, _EvalLocator(sampling, num_entries), inputs,
                        on_bad_video, bad_videos, substitute=False, motion=motion,
                        num_valid=num_entries)
  positions = host_split.eval_positions(num_entries, batch_size, process_index, process_count)
  return ElementPlan(positions.reshape(-1, local_batch), load, {**inputs, **_scalar_spec(True)},
                     bad_videos)


def model_inputs(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The model-input arrays of a batch (`MODEL_INPUTS` present in it), in the models' order."""
  return {k: batch[k] for k in MODEL_INPUTS if k in batch}
