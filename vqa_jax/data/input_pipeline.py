"""The tf.data loader (the default, `data.loader = 'tf_data'`): an `ElementPlan` as batches.

This is the only module of the package that imports TensorFlow (the GPU machines have none; the
grain loader, `grain_pipeline`, needs none), and it hides GPUs from TF, so TensorFlow never takes
GPU memory. What is read, and how bad videos are handled, is `element_plan`'s; here the elements
are decoded in parallel threads (`data.workers`) inside `tf.numpy_function`, in order, batched
and prefetched.

TensorFlow turns an exception raised inside `tf.numpy_function` into `tf.errors.UnknownError`
whose message embeds "VideoDecodeError: <path>: <reason>" and the Python traceback.
`as_numpy` turns it back into a `VideoDecodeError`.

Stopping early (a decode error, an interrupt): deleting the iterator does not stop the element
loads already running in tf.data's threads, and a thread that is still in Python when the
interpreter shuts down aborts the process ("FATAL: exception not rethrown", SIGABRT) or hangs it.
So `batches` counts the running loads (`_InFlight`) and, when it stops, refuses new ones and waits
for the running ones before it returns.
"""

from collections.abc import Iterator
import contextlib
import re
import threading

from absl import logging
import numpy as np
import tensorflow as tf

from vqa_jax.data import element_plan
from vqa_jax.data import video_io

tf.config.set_visible_devices([], "GPU")

_DECODE_ERROR_PATTERN = re.compile(r"VideoDecodeError: ([^\n]+)")
# How long a stopping loader waits for its running element loads (one decode each).
_STOP_TIMEOUT_S = 120.0


class LoaderStopped(RuntimeError):
  """An element load asked for after its loader stopped (its result is never read)."""


class _InFlight:
  """The element loads running in tf.data's threads; after `stop`, new ones fail at once."""

  def __init__(self):
    self._cond = threading.Condition()
    self._running = 0
    self._stopped = False

  @contextlib.contextmanager
  def running(self):
    """Within the block, one load counts as running; raises LoaderStopped once stopped."""
    with self._cond:
      if self._stopped:
        raise LoaderStopped("the loader has stopped")
      self._running += 1
    try:
      yield
    finally:
      with self._cond:
        self._running -= 1
        self._cond.notify_all()

  def stop(self, timeout: float = _STOP_TIMEOUT_S) -> bool:
    """Refuses new loads and waits for the running ones; whether they all finished in time."""
    with self._cond:
      self._stopped = True
      return self._cond.wait_for(lambda: self._running == 0, timeout)


def plan_dataset(plan: element_plan.ElementPlan, workers: int = -1,
                 in_flight: _InFlight | None = None) -> tf.data.Dataset:
  """The plan's batches as a tf.data.Dataset: `workers` decode threads (-1: the host's cores).

  With `in_flight`, every element load is counted there (see the module docstring).
  """
  element_plan.single_threaded_decoding()
  names = list(plan.spec)
  workers = element_plan.default_workers(workers)
  in_flight = _InFlight() if in_flight is None else in_flight

  def load_flat(position):
    with in_flight.running():
      element = plan.load(int(position))
    return [element[k] for k in names]

  def load_tf(position: tf.Tensor) -> dict[str, tf.Tensor]:
    dtypes = [tf.as_dtype(plan.spec[k][1]) for k in names]
    arrays = tf.numpy_function(load_flat, [position], dtypes, stateful=False)
    for name, tensor in zip(names, arrays):
      tensor.set_shape(plan.spec[name][0])
    return dict(zip(names, arrays))

  positions = tf.data.Dataset.from_tensor_slices(plan.positions.reshape(-1))
  ds = positions.map(load_tf, num_parallel_calls=max(workers, 1), deterministic=True)
  return ds.batch(plan.local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _unwrap_decode_error(error: tf.errors.OpError) -> video_io.VideoDecodeError | None:
  """The VideoDecodeError that TensorFlow wrapped into `error`, or None if it wraps another."""
  match = _DECODE_ERROR_PATTERN.search(error.message)
  if match is None:
    return None
  path, _, reason = match.group(1).partition(": ")
  return video_io.VideoDecodeError(path, reason)


def as_numpy(ds: tf.data.Dataset,
             in_flight: _InFlight | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Iterates `ds` as numpy dicts; decode failures re-raise as VideoDecodeError naming the file.

  When it stops (exhausted, an error, closed), the iterator is released and, with `in_flight`
  (the dataset's load counter), the loads still running in tf.data's threads are waited for.
  """
  iterator = ds.as_numpy_iterator()
  try:
    while True:
      decode_error = None
      try:
        batch = next(iterator)
      except StopIteration:
        return
      except tf.errors.OpError as e:
        decode_error = _unwrap_decode_error(e)
        if decode_error is None:
          raise
      if decode_error is not None:
        # Raised outside the except block, so that it holds no reference (__context__) to TF's
        # error, whose traceback keeps the C++ iterator alive until interpreter shutdown (a hang).
        raise decode_error
      yield batch
  finally:
    del iterator  # release the C++ iterator now, not at interpreter shutdown
    if in_flight is not None and not in_flight.stop():
      logging.warning("tf.data loader: element loads still running %.0f s after it stopped",
                      _STOP_TIMEOUT_S)


def batches(plan: element_plan.ElementPlan, workers: int = -1) -> Iterator[dict[str, np.ndarray]]:
  """The plan's batches as numpy dicts, decoded by `workers` threads (the tf.data loader)."""
  in_flight = _InFlight()
  return as_numpy(plan_dataset(plan, workers, in_flight), in_flight)
