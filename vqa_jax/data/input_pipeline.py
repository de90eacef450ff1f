"""tf.data pipelines of model inputs (fragment clips, frames, motion): resumable training, padded eval.

This is the only module of the package that imports TensorFlow (the GPU machines have none).
Decoding and sampling run in numpy (`sampling.sample_clips`) inside `tf.numpy_function`.

Training reads an endless stream of element positions g = 0, 1, 2, ...: position g belongs to
epoch e = g // N (N videos) and visits entry permutation_e[g % N], where permutation_e is drawn
from `np.random.default_rng([seed, e])`; its sampling randomness comes from
`SeedSequence(seed, spawn_key=(g,))`. Step s is positions [s * B, (s + 1) * B), so a batch may
straddle two epochs, every video is seen once per epoch, and a run started at any step yields
exactly the batches of an uninterrupted run.

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
pipeline with a VideoDecodeError naming it. With 'skip' each bad video is logged once and
recorded in a `BadVideoLog`; training substitutes the next decodable entry of the list (entry
index + 1, + 2, ... modulo N, with the position's own sampling generator), so every batch slot
holds a real video and the result is deterministic; evaluation keeps the slot with a zero video
and `valid=False`, so the bad video is left out of the metrics.

Model inputs (`MODEL_INPUTS`): every element has `video` (the sampler's clips or frames); with a
`motion.MotionFeatures` (SimpleVQA) it also has `motion`, float32 (clip_len, D) per video, loaded
beside the frames. Unusable motion features count as a bad video (the error names the feature
file), and the datasets list all of them up front (`MotionFeatures.check`).

TensorFlow turns an exception raised inside `tf.numpy_function` into `tf.errors.UnknownError`
whose message embeds "VideoDecodeError: <path>: <reason>" and the Python traceback.
`as_numpy` turns it back into a `VideoDecodeError`.
"""

from collections.abc import Callable, Iterator, Mapping
import functools
import re
import threading
from typing import Any

from absl import logging
import numpy as np
import tensorflow as tf

from vqa_jax.data import frames_1fps
from vqa_jax.data import host_split
from vqa_jax.data import labels
from vqa_jax.data import motion as motion_lib
from vqa_jax.data import sampling as sampling_lib
from vqa_jax.data import video_io

tf.config.set_visible_devices([], "GPU")

_MAX_LISTED_MISSING = 20
# Batch keys that are model inputs, in the order the models take them.
MODEL_INPUTS = ("video", "motion")
_DECODE_ERROR_PATTERN = re.compile(r"VideoDecodeError: ([^\n]+)")
BAD_VIDEO_POLICIES = ("error", "skip")

# Maps an element position to (entry index, sampling rng or None for centred sampling).
Locator = Callable[[int], tuple[int, np.random.Generator | None]]


class BadVideoLog:
  """Thread-safe record of the videos that failed to decode: `count`, `reasons` {path: reason}."""

  def __init__(self):
    self._lock = threading.Lock()
    self._reasons: dict[str, str] = {}

  def record(self, path: str, reason: str) -> None:
    """Records a decode failure, logging a warning the first time `path` fails."""
    with self._lock:
      if path in self._reasons:
        return
      self._reasons[path] = reason
    logging.warning("skipping bad video %s: %s", path, reason)

  def is_bad(self, path: str) -> bool:
    """Whether `path` has already failed to decode."""
    with self._lock:
      return path in self._reasons

  @property
  def count(self) -> int:
    """The number of distinct videos that failed to decode."""
    with self._lock:
      return len(self._reasons)

  @property
  def reasons(self) -> dict[str, str]:
    """A copy of {path: reason} for the videos that failed to decode."""
    with self._lock:
      return dict(self._reasons)

  def summary(self) -> str:
    """One line for an epoch or evaluation summary, e.g. '2 videos skipped (bad input)'."""
    count = self.count
    return f"{count} video{'' if count == 1 else 's'} skipped (bad input)"


def _check_policy(on_bad_video: str) -> None:
  """Raises ValueError unless `on_bad_video` is one of BAD_VIDEO_POLICIES."""
  if on_bad_video not in BAD_VIDEO_POLICIES:
    raise ValueError(f"on_bad_video must be one of {BAD_VIDEO_POLICIES}, got {on_bad_video!r}")


def check_videos_exist(entries: list[labels.Entry]) -> None:
  """Raises FileNotFoundError listing (up to 20 of) the entries whose video file is missing."""
  if not entries:
    raise ValueError("no entries to build a dataset from")
  missing = labels.missing_videos(entries)
  if missing:
    listed = "\n  ".join(missing[:_MAX_LISTED_MISSING])
    raise FileNotFoundError(f"{len(missing)} of {len(entries)} videos are missing (first "
                            f"{min(len(missing), _MAX_LISTED_MISSING)} listed):\n  {listed}")


def epoch_order(seed: int, epoch: int, num_entries: int) -> np.ndarray:
  """The visiting order of the entries in one training epoch."""
  return np.random.default_rng([seed, epoch]).permutation(num_entries)


def element_rng(seed: int, position: int) -> np.random.Generator:
  """The sampling generator of the training element at global stream position `position`."""
  return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(position,)))


def _train_locator(seed: int, num_entries: int) -> Locator:
  """Locator over the epoch-permuted training stream (caches recent epochs' orders, thread-safe)."""
  order = functools.lru_cache(maxsize=2)(lambda epoch: epoch_order(seed, epoch, num_entries))

  def locate(position: int) -> tuple[int, np.random.Generator]:
    epoch, offset = divmod(position, num_entries)
    return int(order(epoch)[offset]), element_rng(seed, position)

  return locate


def _video_shape(sampling: Mapping[str, Any], num_clips: int, squeeze: bool) -> tuple[int, ...]:
  """Shape of one element's video: (num_clips, T, S, S, 3), without the clip axis if `squeeze`.

  S is grid * patch for the fragment samplers and `crop` for 'frames_1fps'.
  """
  if sampling.get("method", "fragments") == frames_1fps.METHOD:
    side = sampling["crop"]
  else:
    side = sampling["grid"] * sampling["patch"]
  clip_shape = (sampling["clip_len"], side, side, 3)
  return clip_shape if squeeze else (num_clips, *clip_shape)


# name -> (shape, dtype) of one element's model inputs.
InputSpec = dict[str, tuple[tuple[int, ...], Any]]


def _input_spec(sampling: Mapping[str, Any], num_clips: int, squeeze: bool,
                motion: motion_lib.MotionFeatures | None) -> InputSpec:
  """The model inputs of one element: `video`, plus `motion` (clip_len, D) when given."""
  spec = {"video": (_video_shape(sampling, num_clips, squeeze), np.uint8)}
  if motion is not None:
    spec["motion"] = ((motion.num_frames, motion.dim), np.float32)
  return spec


def _check_inputs(entries: list[labels.Entry], sampling: Mapping[str, Any],
                  motion: motion_lib.MotionFeatures | None, on_bad_video: str) -> None:
  """Fails early on a bad policy or config, missing videos, or (with 'error') motion features."""
  _check_policy(on_bad_video)
  sampling_lib.check_config(sampling)
  check_videos_exist(entries)
  if motion is not None:
    if motion.num_frames != sampling["clip_len"]:
      raise ValueError(f"motion features for {motion.num_frames} frames, but the sampler takes "
                       f"clip_len={sampling['clip_len']}")
    motion.check(entries, on_bad_video)


# Maps an element position to ({input name: array}, label, entry index, whether it was decoded).
Loader = Callable[[int], tuple[dict[str, np.ndarray], np.float32, np.int32, np.bool_]]


def _make_loader(entries: list[labels.Entry], sampling: Mapping[str, Any], num_clips: int,
                 locate: Locator, spec: InputSpec, on_bad_video: str,
                 bad_videos: BadVideoLog | None, substitute: bool, augment: str = "none",
                 motion: motion_lib.MotionFeatures | None = None) -> Loader:
  """The numpy loader of one element, applying the bad-video policy (see the module docstring).

  With 'skip', `substitute` tries entries index + 1, + 2, ... (mod N) after a failure, each with a
  fresh sampling generator of the position; otherwise the element's inputs become zeros with
  ok=False. Videos already recorded as bad are not decoded again.
  """
  num_entries = len(entries)
  bad_videos = BadVideoLog() if bad_videos is None else bad_videos

  def element(index: int, inputs: dict[str, np.ndarray], ok: bool):
    return inputs, np.float32(entries[index].mos), np.int32(index), np.bool_(ok)

  def sample(position: int, index: int) -> dict[str, np.ndarray]:
    _, rng = locate(position)
    path = entries[index].path
    inputs = {"motion": motion.load(path)} if motion is not None else {}
    video = sampling_lib.sample_clips(path, sampling, num_clips, rng, augment)
    return {"video": video.reshape(spec["video"][0]), **inputs}

  def load(position: int):
    first, _ = locate(position)
    if on_bad_video == "error":
      return element(first, sample(position, first), True)
    for k in range(num_entries if substitute else 1):
      index = (first + k) % num_entries
      if bad_videos.is_bad(entries[index].path):
        continue
      try:
        return element(index, sample(position, index), True)
      except video_io.VideoDecodeError as e:
        bad_videos.record(entries[index].path, e.reason)
    if substitute:
      raise video_io.VideoDecodeError(entries[first].path, f"no substitute: all {num_entries} "
                                      "videos of the dataset failed to decode")
    return element(first, {k: np.zeros(s, d) for k, (s, d) in spec.items()}, False)

  return load


def _process_layout(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  """(process_index, process_count), jax's values for those not given."""
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top  (only needed for the defaults)
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  return process_index, process_count


def _decode_positions(positions: tf.data.Dataset, spec: InputSpec,
                      load: Loader) -> tf.data.Dataset:
  """Maps positions to {inputs..., label, index, ok, position} with `load`, in parallel, in order."""
  names = list(spec)

  def load_flat(position):
    inputs, label, index, ok = load(int(position))
    return (*[inputs[k] for k in names], label, index, ok)

  def load_tf(position: tf.Tensor) -> dict[str, tf.Tensor]:
    dtypes = [tf.as_dtype(spec[k][1]) for k in names] + [tf.float32, tf.int32, tf.bool]
    *inputs, label, index, ok = tf.numpy_function(load_flat, [position], dtypes, stateful=False)
    for name, tensor in zip(names, inputs):
      tensor.set_shape(spec[name][0])
    for scalar in (label, index, ok):
      scalar.set_shape(())
    return {**dict(zip(names, inputs)), "label": label, "index": index, "ok": ok,
            "position": position}

  return positions.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def train_dataset(entries: list[labels.Entry], sampling: Mapping[str, Any], batch_size: int,
                  seed: int, num_steps: int, start_step: int = 0, num_clips: int = 1,
                  on_bad_video: str = "error",
                  bad_videos: BadVideoLog | None = None, augment: str = "none",
                  process_index: int | None = None,
                  process_count: int | None = None,
                  motion: motion_lib.MotionFeatures | None = None) -> tf.data.Dataset:
  """Deterministic, resumable training batches for steps [start_step, num_steps).

  `batch_size` is the global batch; this process yields its batch_size / process_count slice of
  each. With on_bad_video='skip' a bad video is replaced by the next decodable entry and recorded
  in `bad_videos` (pass a BadVideoLog to read the count afterwards). `augment` is 'none' or
  'autoaugment'. Batches: video, label, index, and with `motion` the (B, clip_len, D) `motion`.
  """
  if not 0 <= start_step <= num_steps:
    raise ValueError(f"need 0 <= start_step ({start_step}) <= num_steps ({num_steps})")
  _check_inputs(entries, sampling, motion, on_bad_video)
  process_index, process_count = _process_layout(process_index, process_count)
  local_batch = host_split.local_batch_size(batch_size, process_count)
  spec = _input_spec(sampling, num_clips, num_clips == 1, motion)
  load = _make_loader(entries, sampling, num_clips, _train_locator(seed, len(entries)), spec,
                      on_bad_video, bad_videos, substitute=True, augment=augment, motion=motion)
  positions = tf.data.Dataset.from_tensor_slices(host_split.host_positions(
      start_step, num_steps, batch_size, process_index, process_count))
  ds = _decode_positions(positions, spec, load)
  ds = ds.map(lambda x: {k: x[k] for k in (*spec, "label", "index")})
  return ds.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(entries: list[labels.Entry], sampling: Mapping[str, Any], batch_size: int,
                 num_clips: int, on_bad_video: str = "error",
                 bad_videos: BadVideoLog | None = None, process_index: int | None = None,
                 process_count: int | None = None,
                 motion: motion_lib.MotionFeatures | None = None) -> tf.data.Dataset:
  """Deterministic evaluation batches in file order; the last is padded with copies, valid=False.

  `batch_size` is the global batch; this process yields its batch_size / process_count slice of
  each global batch (every process the same number of batches; see `host_split`). Offsets are
  centred unless `sampling.eval_offsets` is 'random'. With on_bad_video='skip' a bad video keeps
  its slot with valid=False (a zero video) and is recorded in `bad_videos`. With `motion` each
  element also has its video's `motion` (clip_len, D), one per video (no clips axis).
  """
  _check_inputs(entries, sampling, motion, on_bad_video)
  process_index, process_count = _process_layout(process_index, process_count)
  local_batch = host_split.local_batch_size(batch_size, process_count)
  num_entries = len(entries)
  spec = _input_spec(sampling, num_clips, False, motion)

  def locate(position: int) -> tuple[int, np.random.Generator | None]:
    index = position % num_entries
    return index, sampling_lib.eval_rng(sampling, index)

  load = _make_loader(entries, sampling, num_clips, locate, spec, on_bad_video,
                      bad_videos, substitute=False, motion=motion)
  positions = tf.data.Dataset.from_tensor_slices(host_split.eval_positions(
      num_entries, batch_size, process_index, process_count))
  ds = _decode_positions(positions, spec, load)
  ds = ds.map(lambda x: {**{k: x[k] for k in spec}, "label": x["label"], "index": x["index"],
                         "valid": tf.logical_and(x["ok"], x["position"] < num_entries)})
  return ds.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def model_inputs(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The model-input arrays of a batch (`MODEL_INPUTS` present in it), in the models' order."""
  return {k: batch[k] for k in MODEL_INPUTS if k in batch}


def _unwrap_decode_error(error: tf.errors.OpError) -> video_io.VideoDecodeError | None:
  """The VideoDecodeError that TensorFlow wrapped into `error`, or None if it wraps another."""
  match = _DECODE_ERROR_PATTERN.search(error.message)
  if match is None:
    return None
  path, _, reason = match.group(1).partition(": ")
  return video_io.VideoDecodeError(path, reason)


def as_numpy(ds: tf.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
  """Iterates `ds` as numpy dicts; decode failures re-raise as VideoDecodeError naming the file."""
  iterator = ds.as_numpy_iterator()
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError as e:
      decode_error = _unwrap_decode_error(e)
      if decode_error is None:
        raise
      raise decode_error from e
    yield batch
