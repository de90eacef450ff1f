"""Orbax's follow-on noise after a failed checkpoint write, dropped so the run's own error is last.

When an asynchronous save fails (a full disk: tensorstore's RESOURCE_EXHAUSTED, "No space left on
device"), the failure reaches the run as an exception from the next save or from
`checkpointing.finishing`, which names the newest complete checkpoint. Around it orbax and asyncio
print the same failure dozens of times: orbax logs it with a traceback from each background thread;
tensorstore's completion callbacks, arriving after orbax's event loop closed, print "RuntimeError:
Event loop is closed" tracebacks; at interpreter exit asyncio logs "Task exception was never
retrieved" for every orbax write task and the coroutines' cleanup fails with "sys.meta_path is
None". `install()` (idempotent; `checkpointing.finishing` calls it) turns orbax's error records into
their one message line and drops the rest, which concern orbax's own tasks and, once
`run_failed()` (finishing, when the run ends with an error), any unretrieved asyncio future.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

_ORBAX_DIR = os.sep + "orbax" + os.sep
_installed = False


def _from_orbax(path: str | None) -> bool:
  """Whether a source file path lies in the orbax package."""
  return bool(path) and _ORBAX_DIR in path


_run_failed = False


def run_failed() -> None:
  """Marks the run as failed (its error about to propagate): from now on asyncio's "exception was
  never retrieved" records (the failed save's leftover futures, collected at exit) are dropped."""
  global _run_failed
  _run_failed = True


def _unretrieved_follow_on(record: logging.LogRecord) -> bool:
  """Whether an asyncio record reports an unretrieved exception of orbax's, or of any future once
  the run has failed."""
  message = record.getMessage()
  if "exception was never retrieved" not in message:
    return False
  frames = traceback.extract_tb(record.exc_info[2]) if record.exc_info else []
  return (_run_failed or _from_orbax(message)
          or any(_from_orbax(frame.filename) for frame in frames))


class OrbaxErrorsOneLine(logging.Filter):
  """Orbax's ERROR records keep their message line and lose their traceback; asyncio's "Task
  exception was never retrieved" records of orbax's tasks (or of any, once the run has failed:
  `run_failed`) are dropped."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.name == "asyncio" and _unretrieved_follow_on(record):
      return False
    if record.levelno >= logging.ERROR and _from_orbax(record.pathname):
      record.exc_info, record.exc_text, record.stack_info = None, None, None
    return True


def _is_closed_loop_callback(exc_type, exc, tb) -> bool:
  """Whether an exception is asyncio's "Event loop is closed" raised by `call_soon_threadsafe`
  (a tensorstore completion arriving after orbax's event loop closed)."""
  if not (exc_type is RuntimeError and str(exc) == "Event loop is closed"):
    return False
  return any(frame.name == "call_soon_threadsafe" for frame in traceback.extract_tb(tb))


def _is_orbax_cleanup_at_exit(unraisable) -> bool:
  """Whether an unraisable exception comes from an orbax coroutine finalized at interpreter exit."""
  code = getattr(unraisable.object, "cr_code", None)
  return _from_orbax(getattr(code, "co_filename", None))


def install() -> None:
  """Installs the filters (once per process): on the root and absl loggers' handlers and on the
  asyncio logger, and around sys.excepthook and sys.unraisablehook (tensorstore reports a failed
  callback as an unraisable exception)."""
  global _installed
  if _installed:
    return
  _installed = True
  one_line = OrbaxErrorsOneLine()
  logging.getLogger("asyncio").addFilter(one_line)
  for logger in (logging.getLogger(), logging.getLogger("absl")):
    for handler in logger.handlers:
      handler.addFilter(one_line)
  try:
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.get_absl_handler().addFilter(one_line)
  except ImportError:
    pass

  previous_excepthook = sys.excepthook

  def excepthook(exc_type, exc, tb):
    if not _is_closed_loop_callback(exc_type, exc, tb):
      previous_excepthook(exc_type, exc, tb)

  sys.excepthook = excepthook
  previous_unraisablehook = sys.unraisablehook

  def unraisablehook(unraisable):
    if not (_is_orbax_cleanup_at_exit(unraisable) or _is_closed_loop_callback(
        unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)):
      previous_unraisablehook(unraisable)

  sys.unraisablehook = unraisablehook
