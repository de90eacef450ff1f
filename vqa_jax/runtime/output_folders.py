"""Output folders checked before any work: a file in the way or a folder that cannot be written is
named in one line ('is a file, not a folder', 'cannot write (Permission denied)')."""

from __future__ import annotations

import os
import tempfile


def problem(path: str, create: bool = True) -> str:
  """Why `path` cannot serve as a writable folder ('' when it can).

  With `create` the folder (and its parents) is made when missing. Writability is probed by
  creating and removing a temporary file in it (permission bits do not stop root; a read-only
  mount does).
  """
  existing = os.path.abspath(path)
  while not os.path.exists(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)  # the nearest part of the path that exists
  if not os.path.isdir(existing):
    where = "" if existing == os.path.abspath(path) else f"{existing}: "
    return f"{where}is a file, not a folder"
  if create:
    try:
      os.makedirs(path, exist_ok=True)
    except OSError as e:
      return f"cannot create ({e.strerror})"
  elif not os.path.isdir(path):
    return "does not exist"
  try:
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    return f"cannot write ({e.strerror})"
  return ""


class UnusableFolder(OSError):
  """An output folder that is a file, cannot be created or cannot be written (`problem`)."""


def make(path: str, what: str) -> None:
  """Creates the writable folder `path`, else raises UnusableFolder('<what> <path>: <problem>')."""
  found = problem(path)
  if found:
    raise UnusableFolder(f"{what} {path}: {found}")
