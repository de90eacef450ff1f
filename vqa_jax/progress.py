"""Training progress lines: step, losses, steps/s and ETA."""

import time


def format_duration(seconds: float) -> str:
  """Seconds as a compact '1h02m', '3m07s' or '12s'."""
  seconds = max(int(round(seconds)), 0)
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m"
  if minutes:
    return f"{minutes}m{secs:02d}s"
  return f"{secs}s"


class Progress:
  """Measures steps/s between reports and estimates the time left to `total_steps`."""

  def __init__(self, total_steps: int, start_step: int = 0, clock=time.monotonic):
    self.total_steps = total_steps
    self._clock = clock
    self._last_step = start_step
    self._last_time = clock()

  def report(self, step: int, metrics: dict[str, float]) -> str:
    """A one-line report for `step` (steps done so far) with the given scalar metrics."""
    now = self._clock()
    elapsed = now - self._last_time
    rate = (step - self._last_step) / elapsed if elapsed > 0 else float("nan")
    self._last_step, self._last_time = step, now
    eta = (self.total_steps - step) / rate if rate > 0 else float("nan")
    fields = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    eta_text = format_duration(eta) if eta == eta else "?"
    return (f"step {step}/{self.total_steps} | {fields} | {rate:.2f} steps/s | ETA {eta_text}")
