"""orbax_noise: after a failed checkpoint write, orbax's follow-on noise is dropped and nothing else.

The full run on a disk that fills up: test_exit_paths::test_disk_full_prints_the_real_error_last...
"""

import asyncio
import logging
import os
import sys
import types

import pytest

from vqa_jax.training import orbax_noise

ORBAX_FILE = os.path.join(os.sep, "venv", "site-packages", "orbax", "checkpoint", "future.py")


def _record(name, path, level=logging.ERROR, message="failed", exc=True):
  """A log record from `path`, with an exception's traceback when `exc`."""
  exc_info = None
  if exc:
    try:
      raise ValueError("RESOURCE_EXHAUSTED: No space left on device")
    except ValueError:
      exc_info = sys.exc_info()
  return logging.LogRecord(name, level, path, 1, message, None, exc_info)


def test_orbax_errors_keep_their_line_and_lose_their_traceback():
  one_line = orbax_noise.OrbaxErrorsOneLine()
  record = _record("absl", ORBAX_FILE)
  assert one_line.filter(record) and record.exc_info is None
  ours = _record("absl", "/repo/vqa_jax/training/trainer.py")
  assert one_line.filter(ours) and ours.exc_info is not None  # other errors keep theirs
  warning = _record("absl", ORBAX_FILE, level=logging.WARNING)
  assert one_line.filter(warning) and warning.exc_info is not None


def test_unretrieved_orbax_tasks_are_dropped_others_kept():
  one_line = orbax_noise.OrbaxErrorsOneLine()
  orbax_task = _record("asyncio", "asyncio/base_events.py", message=(
      "Task exception was never retrieved\nfuture: <Task finished coro=<async_serialize() done, "
      f"defined at {ORBAX_FILE}:126> exception=ValueError('RESOURCE_EXHAUSTED')>"))
  other_task = _record("asyncio", "asyncio/base_events.py", message=(
      "Task exception was never retrieved\nfuture: <Task finished coro=<mine() done, defined at "
      "/repo/vqa_jax/x.py:1> exception=ValueError('x')>"))
  assert not one_line.filter(orbax_task)
  assert one_line.filter(other_task)


def _closed_loop_error():
  """(type, value, traceback) of `call_soon_threadsafe` on a closed event loop."""
  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(lambda: None)
  except RuntimeError:
    return sys.exc_info()
  raise AssertionError("a closed loop accepted a callback")


@pytest.fixture
def installed(monkeypatch):
  """orbax_noise installed afresh, the process's hooks restored afterwards."""
  monkeypatch.setattr(sys, "excepthook", sys.excepthook)
  monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
  monkeypatch.setattr(orbax_noise, "_installed", False)
  asyncio_filters = list(logging.getLogger("asyncio").filters)
  orbax_noise.install()
  yield
  logging.getLogger("asyncio").filters[:] = asyncio_filters


def test_closed_loop_callbacks_are_silent_other_errors_printed(installed, capsys):  # pylint: disable=unused-argument
  exc_type, exc, tb = _closed_loop_error()
  sys.unraisablehook(types.SimpleNamespace(exc_type=exc_type, exc_value=exc, exc_traceback=tb,
                                           err_msg=None, object=None))
  sys.excepthook(exc_type, exc, tb)
  assert capsys.readouterr().err == ""
  try:
    raise RuntimeError("Event loop is closed")  # the same words, not from a loop's callback
  except RuntimeError:
    sys.excepthook(*sys.exc_info())
  assert "RuntimeError: Event loop is closed" in capsys.readouterr().err


def test_any_unretrieved_future_is_dropped_once_the_run_failed(monkeypatch):
  one_line = orbax_noise.OrbaxErrorsOneLine()
  leftover = _record("asyncio", "asyncio/base_events.py", message=(
      "Future exception was never retrieved\nfuture: <Future finished exception=ValueError("
      "'RESOURCE_EXHAUSTED: No space left on device')>"))
  other = _record("asyncio", "asyncio/base_events.py", message="Executing <Task> took 0.2 seconds")
  monkeypatch.setattr(orbax_noise, "_run_failed", False)
  assert one_line.filter(leftover) and one_line.filter(other)
  orbax_noise.run_failed()
  assert not one_line.filter(leftover) and one_line.filter(other)
