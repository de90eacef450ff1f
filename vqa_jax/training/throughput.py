"""Input-wait accounting: per logging interval, how long the host waited for batches, and clips/s.

The training loop times each `next(batches)` (`InputMeter.next_batch`). Dispatch is asynchronous
and the finite check trails by one step, so in a compute-bound run the next batch is already
prefetched and the wait is near zero, while in an input-bound run the host blocks in the loader
and the device idles: `input_wait_fraction` is that wait over the interval's wall time. Time spent
compiling, evaluating or saving is excluded (`paused`), so the rate is the training loop's.
"""

from collections.abc import Iterator
import contextlib
import time
from typing import TypeVar

T = TypeVar("T")

# The scalars `InputMeter.report` adds to each training record (timings: they differ between runs).
KEYS = ("input_wait_fraction", "clips_per_s", "step_time_s")
# An interval whose host waited at least this fraction of its wall time for batches is input-bound.
INPUT_BOUND_FRACTION = 0.25


class InputMeter:
  """Measures one interval at a time: wait for input, wall time, steps; `report` closes it."""

  def __init__(self, clips_per_step: int, clock=time.monotonic):
    self.clips_per_step = clips_per_step
    self._clock = clock
    self._start = clock()
    self._paused = 0.0
    self._waited = 0.0
    self._steps = 0

  def next_batch(self, batches: Iterator[T]) -> T:
    """`next(batches)`, timed as input wait (StopIteration passes through)."""
    start = self._clock()
    try:
      return next(batches)
    finally:
      self._waited += self._clock() - start

  def step_done(self) -> None:
    """Counts one training step in the current interval."""
    self._steps += 1

  @contextlib.contextmanager
  def paused(self):
    """Within the block, time does not count (compilation, evaluation, checkpoint saves)."""
    start = self._clock()
    try:
      yield
    finally:
      self._paused += self._clock() - start

  def report(self) -> dict[str, float]:
    """{input_wait_fraction, clips_per_s, step_time_s} of the interval since the last report."""
    wall = self._clock() - self._start - self._paused
    steps = max(self._steps, 1)
    scalars = {"input_wait_fraction": min(max(self._waited / wall, 0.0), 1.0) if wall > 0 else 0.0,
               "clips_per_s": self._steps * self.clips_per_step / wall if wall > 0 else 0.0,
               "step_time_s": wall / steps}
    self._start, self._paused, self._waited, self._steps = self._clock(), 0.0, 0.0, 0
    return scalars


def describe(scalars: dict[str, float]) -> str:
  """The progress-line fields, e.g. '12.3 clips/s | input wait 41% (input-bound)'."""
  fraction = scalars["input_wait_fraction"]
  bound = " (input-bound)" if is_input_bound(scalars) else ""
  return f"{scalars['clips_per_s']:.1f} clips/s | input wait {fraction:.0%}{bound}"


def is_input_bound(scalars: dict[str, float]) -> bool:
  """Whether an interval's host waited at least INPUT_BOUND_FRACTION of its time for input."""
  return scalars["input_wait_fraction"] >= INPUT_BOUND_FRACTION


def advice(loader: str, workers: int, cores: int) -> str:
  """What an input-bound run can change, given its loader, decode workers and the host's cores."""
  if loader == "tf_data":
    return (f"data.loader='grain' decodes in {workers} processes instead of threads "
            f"(data.workers={workers}, {cores} cores)")
  if workers < cores:
    return f"raise data.workers (now {workers}; the host has {cores} cores)"
  return (f"all {cores} cores decode already: the input needs a faster decoder or more hosts "
          "(shorter clips, lower-resolution copies of the videos)")
