"""tf.data pipelines of FAST-VQA fragment clips: resumable training, padded evaluation.

This is the only module of the package that imports TensorFlow (the GPU machines have none).
Decoding and sampling run in numpy (`sampling.sample_clips`) inside `tf.numpy_function`.

Training reads an endless stream of element positions g = 0, 1, 2, ...: position g belongs to
epoch e = g // N (N videos) and visits entry permutation_e[g % N], where permutation_e is drawn
from `np.random.default_rng([seed, e])`; its sampling randomness comes from
`SeedSequence(seed, spawn_key=(g,))`. Step s is positions [s * B, (s + 1) * B), so a batch may
straddle two epochs, every video is seen once per epoch, and a run started at any step yields
exactly the batches of an uninterrupted run.

TensorFlow turns an exception raised inside `tf.numpy_function` into `tf.errors.UnknownError`
whose message embeds "VideoDecodeError: <path>: <reason>" and the Python traceback.
`as_numpy` turns it back into a `VideoDecodeError`.
"""

from collections.abc import Callable, Iterator, Mapping
import functools
import re
from typing import Any

import numpy as np
import tensorflow as tf

from vqa_jax.data import labels
from vqa_jax.data import sampling as sampling_lib
from vqa_jax.data import video_io

tf.config.set_visible_devices([], "GPU")

_MAX_LISTED_MISSING = 20
_DECODE_ERROR_PATTERN = re.compile(r"VideoDecodeError: ([^\n]+)")

# Maps an element position to (entry index, sampling rng or None for deterministic sampling).
Locator = Callable[[int], tuple[int, np.random.Generator | None]]


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
  """Shape of one element's video: (num_clips, T, S, S, 3), without the clip axis if `squeeze`."""
  side = sampling["grid"] * sampling["patch"]
  clip_shape = (sampling["clip_len"], side, side, 3)
  return clip_shape if squeeze else (num_clips, *clip_shape)


def _decode_positions(positions: tf.data.Dataset, entries: list[labels.Entry],
                      sampling: Mapping[str, Any], num_clips: int, locate: Locator,
                      squeeze: bool) -> tf.data.Dataset:
  """Maps int64 positions to {video, label, index, position} by decoding in parallel, in order."""
  shape = _video_shape(sampling, num_clips, squeeze)

  def load(position: np.int64) -> tuple[np.ndarray, np.float32, np.int32]:
    index, rng = locate(int(position))
    entry = entries[index]
    video = sampling_lib.sample_clips(entry.path, sampling, num_clips, rng)
    return video.reshape(shape), np.float32(entry.mos), np.int32(index)

  def load_tf(position: tf.Tensor) -> dict[str, tf.Tensor]:
    video, label, index = tf.numpy_function(load, [position], (tf.uint8, tf.float32, tf.int32),
                                            stateful=False)
    video.set_shape(shape)
    label.set_shape(())
    index.set_shape(())
    return {"video": video, "label": label, "index": index, "position": position}

  return positions.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def train_dataset(entries: list[labels.Entry], sampling: Mapping[str, Any], batch_size: int,
                  seed: int, num_steps: int, start_step: int = 0,
                  num_clips: int = 1) -> tf.data.Dataset:
  """Deterministic, resumable training batches for steps [start_step, num_steps)."""
  if not 0 <= start_step <= num_steps:
    raise ValueError(f"need 0 <= start_step ({start_step}) <= num_steps ({num_steps})")
  check_videos_exist(entries)
  positions = tf.data.Dataset.range(start_step * batch_size, num_steps * batch_size)
  ds = _decode_positions(positions, entries, sampling, num_clips,
                         _train_locator(seed, len(entries)), squeeze=num_clips == 1)
  ds = ds.map(lambda x: {k: x[k] for k in ("video", "label", "index")})
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(entries: list[labels.Entry], sampling: Mapping[str, Any], batch_size: int,
                 num_clips: int) -> tf.data.Dataset:
  """Deterministic evaluation batches in file order; the last is padded with copies, valid=False."""
  check_videos_exist(entries)
  num_entries = len(entries)
  padded = -(-num_entries // batch_size) * batch_size
  positions = tf.data.Dataset.range(padded)
  ds = _decode_positions(positions, entries, sampling, num_clips,
                         lambda position: (position % num_entries, None), squeeze=False)
  ds = ds.map(lambda x: {"video": x["video"], "label": x["label"], "index": x["index"],
                         "valid": x["position"] < num_entries})
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


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
