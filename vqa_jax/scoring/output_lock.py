"""One writer per scoring output file: an advisory `fcntl.flock` on `<file>.lock` beside it.

The kernel drops the lock when its process ends, however it ends (SIGKILL, a container restart), so
there is never a stale lock to time out or take over: a lock file left behind by a killed scorer
is simply locked again by the next one. The file holds the holder's pid, host and start time, for
the second writer's error message. On release the holder removes the file (while still holding it);
a writer that locked a file removed meanwhile notices (its inode is gone from the path) and
retries, so two writers never both hold one path. flock is per open file description: a second
lock of the same file in the same process conflicts too.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time

LOCK_SUFFIX = ".lock"


class OutputLocked(OSError):
  """The output file is being written by another live scorer (the message names it)."""


def lock_path(path: str) -> str:
  """The lock file of output `path` (beside its real path, so every spelling shares one lock)."""
  return os.path.realpath(path) + LOCK_SUFFIX


def _holder(fd: int) -> str:
  """'pid P on host H since T' from a held lock file (what is known of it)."""
  try:
    holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
  except (OSError, ValueError):
    holder = {}
  since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", time.time())))
  return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {since}"


def _same_file(fd: int, path: str) -> bool:
  """Whether `path` still names the file open as `fd` (not removed or replaced meanwhile)."""
  try:
    named = os.stat(path)
  except FileNotFoundError:
    return False
  held = os.fstat(fd)
  return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


class OutputLock:
  """Context manager holding the lock of one output file; OutputLocked when another holds it."""

  def __init__(self, path: str):
    self.path = path
    self.lock_path = lock_path(path)
    self._fd: int | None = None

  def acquire(self) -> None:
    """Takes the lock at once, or raises OutputLocked naming the holder and the lock file."""
    for _ in range(3):  # the holder may remove the file between our open and our flock
      fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise OutputLocked(  # pylint: disable=raise-missing-from
            f"{self.path} is being written by another score process ({holder}; lock "
            f"{self.lock_path}): one writer per output file. Wait for it to finish, or give "
            "another output file") from None
      if not _same_file(fd, self.lock_path):
        os.close(fd)
        continue
      record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
      os.ftruncate(fd, 0)
      os.pwrite(fd, json.dumps(record).encode(), 0)
      self._fd = fd
      return
    raise OutputLocked(f"could not lock {self.lock_path}: other scorers keep replacing it")

  def release(self) -> None:
    """Removes the lock file and unlocks it (a no-op when not held)."""
    if self._fd is None:
      return
    try:
      if _same_file(self._fd, self.lock_path):
        os.remove(self.lock_path)
    finally:
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "OutputLock":
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()
