"""The grain loader (`data.loader = 'grain'`): an `ElementPlan` as batches, TensorFlow-free.

`data.workers` worker processes (grain's `mp_prefetch`; spawned, each decoding single-threaded)
load the plan's elements; worker w takes elements w, w + W, w + 2W, ... and grain interleaves them
back in stream order, so the batches are exactly the tf.data loader's for the same plan. With 0
workers the elements load in the main process.

Worker processes cannot write the parent's `BadVideoLog`, so each element carries the failures
its worker newly recorded and the parent merges them (`ElementPlan.bad_videos`); a decode error
under 'error' travels as a value too and is raised in the parent as the VideoDecodeError naming
the file, at the batch that holds it, as the tf.data loader raises it. Workers exit when their
parent dies, so a trainer killed with SIGKILL leaves no decoder behind.
"""

from collections.abc import Iterator
import multiprocessing
import multiprocessing.connection
import os
import threading

from absl import flags
import grain
import numpy as np

from vqa_jax.data import element_plan
from vqa_jax.data import video_io

# Elements travel pickled through the workers' queues, not through shared memory: as fast here
# (FAST-VQA-B clips, 4.8 MB: 6.6-6.9 vs 5.4-5.6 clips/s on 2 workers of the 2-core CPU), and a
# loader stopped early leaves no shared-memory segment behind for the resource tracker to report
# after the run's real error.
_NO_SHARED_MEMORY = 1 << 62
# An element as it leaves a worker: (arrays or None, {path: reason} newly failed, (path, reason)
# of a decode error or None).
_Loaded = tuple[dict[str, np.ndarray] | None, dict[str, str], tuple[str, str] | None]


class _LoadElement(grain.transforms.Map):
  """position -> (element, new bad-video records, decode error) in a worker."""

  def __init__(self, plan: element_plan.ElementPlan):
    self._load = plan.load
    self._bad_videos = plan.bad_videos

  def map(self, position) -> _Loaded:
    before = self._bad_videos.reasons
    try:
      element, error = self._load(int(position)), None
    except video_io.VideoDecodeError as e:
      element, error = None, (e.path, e.reason)
    after = self._bad_videos.reasons
    return element, {p: r for p, r in after.items() if p not in before}, error


def _exit_with_parent() -> None:
  """Ends this worker process as soon as its parent dies (e.g. a trainer killed with SIGKILL)."""
  parent = multiprocessing.parent_process()
  if parent is None:
    return

  def watch():
    multiprocessing.connection.wait([parent.sentinel])
    os._exit(1)  # pylint: disable=protected-access  (nothing left to clean up for a dead parent)

  threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_init(worker_index: int, worker_count: int) -> None:
  """Each worker process decodes single-threaded and does not outlive the trainer."""
  del worker_index, worker_count
  _exit_with_parent()
  element_plan.single_threaded_decoding()


def element_dataset(plan: element_plan.ElementPlan, workers: int = -1) -> grain.IterDataset:
  """The plan's elements in stream order, loaded by `workers` processes (-1: the host's cores)."""
  element_plan.single_threaded_decoding()
  if not flags.FLAGS.is_parsed():  # grain reads its absl flags; outside an absl app: defaults
    flags.FLAGS.mark_as_parsed()
  workers = element_plan.default_workers(workers)
  ds = grain.MapDataset.source(plan.positions.reshape(-1)).map(_LoadElement(plan))
  ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  ds = grain.experimental.WithOptionsIterDataset(
      ds, grain.experimental.DatasetOptions(min_shm_size=_NO_SHARED_MEMORY))
  if workers == 0:
    return ds
  return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=2),
                        worker_init_fn=_worker_init)


def batches(plan: element_plan.ElementPlan, workers: int = -1) -> Iterator[dict[str, np.ndarray]]:
  """The plan's batches as numpy dicts, each element loaded by one of `workers` processes."""
  iterator = iter(element_dataset(plan, workers))
  names = list(plan.spec)
  try:
    for _ in range(plan.positions.shape[0]):
      batch = []
      for _ in range(plan.local_batch):
        element, new_failures, error = next(iterator)
        for path, reason in new_failures.items():
          plan.bad_videos.record(path, reason)
        if error is not None:
          raise video_io.VideoDecodeError(*error)
        batch.append(element)
      yield {k: np.stack([np.asarray(e[k]) for e in batch]) for k in names}
  finally:
    close = getattr(iterator, "close", None)
    if close is not None:
      close()  # stop the worker processes now, not at garbage collection
