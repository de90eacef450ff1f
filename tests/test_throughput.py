"""Input-wait accounting against a hand-driven clock."""

import pytest

from tests.helpers import ManualClock
from vqa_jax.training import throughput


def test_interval_wait_fraction_clips_per_second_and_step_time():
  clock = ManualClock()
  meter = throughput.InputMeter(clips_per_step=16, clock=clock)

  def slow_batches():
    for i in range(3):
      clock.now += 0.5  # the loader takes 0.5 s for each batch
      yield i

  batches = slow_batches()
  for _ in range(3):
    meter.next_batch(batches)
    clock.now += 1.0  # the step (dispatch + wait on the previous one) takes 1 s
    meter.step_done()
  with meter.paused():
    clock.now += 30.0  # an evaluation: not counted
  scalars = meter.report()
  # 3 steps in 4.5 s of counted wall time, 1.5 s of it waiting for input.
  assert scalars["input_wait_fraction"] == pytest.approx(1.5 / 4.5)
  assert scalars["step_time_s"] == pytest.approx(1.5)
  assert scalars["clips_per_s"] == pytest.approx(3 * 16 / 4.5)
  assert throughput.is_input_bound(scalars)  # 33% >= 25%
  assert "input wait 33% (input-bound)" in throughput.describe(scalars)
  # The next interval starts afresh: an exhausted loader's wait still counts, and no steps.
  clock.now += 2.0
  with pytest.raises(StopIteration):
    meter.next_batch(batches)
  scalars = meter.report()
  assert scalars["input_wait_fraction"] == 0.0 and scalars["clips_per_s"] == 0.0


def test_compute_bound_interval_is_not_flagged():
  clock = ManualClock()
  meter = throughput.InputMeter(clips_per_step=4, clock=clock)
  batches = iter(range(10))
  for _ in range(10):
    meter.next_batch(batches)  # ready at once
    clock.now += 0.2
    meter.step_done()
  scalars = meter.report()
  assert scalars == {"input_wait_fraction": 0.0, "clips_per_s": pytest.approx(20.0),
                     "step_time_s": pytest.approx(0.2)}
  assert "input-bound" not in throughput.describe(scalars)
