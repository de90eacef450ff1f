"""Training progress lines: step, a progress bar, losses, steps/s and ETA; `tqdm_bar` for the
per-file loops of the other commands (scoring, feature extraction, dataset generation)."""

import sys
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


def tqdm_bar(total: int, unit: str, **kwargs):
  """A tqdm bar on stderr (rate, ETA) for a loop over `total` items of `unit`."""
  import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm.tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, **kwargs)


def progress_bar(done: int, total: int, width: int = 20) -> str:
  """A text bar such as '[#####...............]  25%'."""
  fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
  filled = int(fraction * width)
  return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"


class Progress:
  """Measures steps/s between reports and estimates the time left to `total_steps`."""

  def __init__(self, total_steps: int, start_step: int = 0, clock=time.monotonic):
    self.total_steps = total_steps
    self._clock = clock
    self._last_step = start_step
    self._last_time = clock()

  def restart(self, step: int) -> None:
    """Measures the next rate from now and `step` (e.g. after an evaluation, not training)."""
    self._last_step, self._last_time = step, self._clock()

  def report(self, step: int, metrics: dict[str, float]) -> str:
    """A one-line report for `step` (steps done so far) with the given scalar metrics."""
    now = self._clock()
    elapsed = now - self._last_time
    rate = (step - self._last_step) / elapsed if elapsed > 0 else float("nan")
    self._last_step, self._last_time = step, now
    eta = (self.total_steps - step) / rate if rate > 0 else float("nan")
    fields = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    eta_text = format_duration(eta) if eta == eta else "?"
    bar = progress_bar(step, self.total_steps)
    return f"step {step}/{self.total_steps} {bar} | {fields} | {rate:.2f} steps/s | ETA {eta_text}"
