"""Per-video result files of `vqa_jax.score`: JSON lines and CSV, appended and flushed per video.

Every row names the video by path, size in bytes and modification time (ns); a scored video has
`score` (raw), `mos` and `score_01` (empty without a calibration), a failed one its `error`.
`ResultFiles` creates the output folders when it is opened (before any scoring), writes each row
as soon as its video is done (flush + fsync), and on resume first cuts a torn last line left by a
killed process, then reports the videos already recorded, which `score --resume` skips (a
recorded failure too: delete its line to retry it; with both files, the videos recorded in both).
Shards write their own files; `cat`ing them
merges them, since only shard 0 writes the CSV header.
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Iterable

CSV_FIELDS = ("path", "score", "mos", "score_01", "error", "warning", "size", "mtime_ns")
Key = tuple[str, int, int]  # (path, size, mtime_ns)


class OutputError(OSError):
  """An output file or folder that cannot be created or written."""


def file_key(path: str) -> Key:
  """(path, size, mtime_ns) of a file; (path, -1, -1) when it cannot be stat'ed."""
  try:
    stat = os.stat(path)
  except OSError:
    return path, -1, -1
  return path, stat.st_size, stat.st_mtime_ns


def prepare_folder(path: str) -> None:
  """Creates the folder `path` will be written in; OutputError when that is impossible."""
  folder = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise OutputError(f"cannot create the output folder {folder} for {path}: {e}") from e
  if not os.access(folder, os.W_OK):
    raise OutputError(f"output folder {folder} is not writable")


def cut_torn_line(path: str) -> None:
  """Truncates `path` after its last newline (a line a killed writer left half-written)."""
  with open(path, "rb+") as f:
    data = f.read()
    if data and not data.endswith(b"\n"):
      f.truncate(data.rfind(b"\n") + 1)


def _jsonl_keys(path: str) -> set[Key]:
  """The (path, size, mtime_ns) of every row of a JSON-lines result file."""
  keys = set()
  with open(path) as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        keys.add((row["path"], int(row["size"]), int(row["mtime_ns"])))
  return keys


def _csv_keys(path: str) -> set[Key]:
  """The (path, size, mtime_ns) of every row of a CSV result file (header rows skipped)."""
  with open(path, newline="") as f:
    return {(row["path"], int(row["size"]), int(row["mtime_ns"]))
            for row in csv.DictReader(f) if row["path"] != "path"}


def csv_line(row: dict) -> str:
  """One CSV line of a result row (fields CSV_FIELDS; absent and None are empty)."""
  buffer = io.StringIO()
  csv.writer(buffer).writerow(["" if row.get(k) is None else row[k] for k in CSV_FIELDS])
  return buffer.getvalue()


class ResultFiles:
  """The JSON-lines and CSV files of one scoring process (either may be None)."""

  def __init__(self, jsonl_path: str | None, csv_path: str | None, resume: bool = False,
               write_header: bool = True):
    self._files = []
    self.done: set[Key] = set()
    for path, kind in ((jsonl_path, "jsonl"), (csv_path, "csv")):
      if not path:
        continue
      prepare_folder(path)
      existing = resume and os.path.isfile(path) and os.path.getsize(path) > 0
      if existing:
        cut_torn_line(path)
        keys = _jsonl_keys(path) if kind == "jsonl" else _csv_keys(path)
        self.done = keys if not self._files else self.done & keys
      try:
        f = open(path, "a" if resume else "w", newline="")
      except OSError as e:
        raise OutputError(f"cannot open {path} for writing: {e}") from e
      if kind == "csv" and write_header and not existing:
        f.write(csv_line(dict(zip(CSV_FIELDS, CSV_FIELDS))))
      self._files.append((f, kind))

  def write(self, row: dict) -> None:
    """Appends one result row to every file and makes it durable."""
    for f, kind in self._files:
      f.write(json.dumps(row) + "\n" if kind == "jsonl" else csv_line(row))
      f.flush()
      os.fsync(f.fileno())

  def close(self) -> None:
    """Closes the files."""
    for f, _ in self._files:
      f.close()

  def __enter__(self) -> "ResultFiles":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def pending(videos: Iterable[str], done: set[Key]) -> list[str]:
  """The videos whose (path, size, mtime_ns) is not among `done`."""
  return [video for video in videos if file_key(video) not in done]
