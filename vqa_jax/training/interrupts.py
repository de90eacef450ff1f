"""Stopping a run on SIGTERM or SIGINT at a step boundary, and the exit status that says so.

Inside `stop_flag()`, SIGTERM (a scheduler's preemption) and SIGINT (Ctrl-C) set a flag instead of
killing the process; the trainer saves a checkpoint at the next step boundary and raises
`Interrupted`. A second SIGINT while the flag is set raises KeyboardInterrupt at once (the trainer
still waits for checkpoint writes already under way). `vqa_jax.main` exits with `EXIT_INTERRUPTED`
(75, sysexits' EX_TEMPFAIL: "try again later") so that launch scripts requeue the job and
`main && next` stops: an interrupted run is not a finished one.
"""

import contextlib
import signal
import threading

EXIT_INTERRUPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
  """Training stopped on a signal after saving a checkpoint at `step`."""

  def __init__(self, step: int, signal_name: str = "SIGTERM"):
    super().__init__(f"interrupted by {signal_name}; checkpoint saved at step {step}")
    self.step = step
    self.signal_name = signal_name


class StopFlag:
  """Set by the first stop signal; remembers which signal it was."""

  def __init__(self):
    self._event = threading.Event()
    self.signal_name = ""

  def is_set(self) -> bool:
    """Whether a stop signal has arrived."""
    return self._event.is_set()

  def handle(self, signum, frame) -> None:
    """Signal handler: sets the flag; a repeated SIGINT raises KeyboardInterrupt."""
    del frame
    if signum == signal.SIGINT and self._event.is_set():
      raise KeyboardInterrupt
    if not self._event.is_set():
      self.signal_name = signal.Signals(signum).name
    self._event.set()


@contextlib.contextmanager
def stop_flag():
  """Within the block SIGTERM and SIGINT set the yielded StopFlag; old handlers come back after.

  Off the main thread no handler can be installed, and the flag is never set.
  """
  flag = StopFlag()
  if threading.current_thread() is not threading.main_thread():
    yield flag
    return
  previous = {sig: signal.signal(sig, flag.handle) for sig in STOP_SIGNALS}
  try:
    yield flag
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
