"""Per-video result files of `vqa_jax.score`: JSON lines and CSV, one writer each, never truncated.

Every row names the video by path, size in bytes and modification time (ns), and the checkpoint and
config that scored it (`checkpoint`, `checkpoint_digest`, `config_digest`: `provenance`); a scored
video has `score` (raw), `mos` and `score_01` (empty without a calibration), a failed one its
`error`, either may have a `warning` (`clip_warnings`).

The rules `ResultFiles` enforces when it is opened (before any model is loaded):

* **Never truncated.** An output file that already holds rows is refused (`OutputExists`, exit 2)
  unless `resume=True`; with it, the rows are kept, the videos they hold are skipped
  (`pending`; a recorded failure too: delete its line to retry it) and new rows are appended. An
  empty file, a CSV holding only its header, or a torn line alone holds no rows and is reused.
* **One writer per file.** Each output file is locked (`output_lock`); a second scorer on it gets
  `OutputLocked` (exit 2) naming the holder, and its files are left untouched.
* **The JSONL is the record, the CSV is derived from it.** When both are given, the CSV is
  rebuilt from the JSONL's rows on opening (atomically: a temporary file renamed over it, only
  when it differs), so a kill between a row's JSONL and CSV writes (JSONL one row ahead) or a
  lost CSV is repaired, and both files hold the same rows. A CSV holding rows that the JSONL
  lacks was not written beside it and is refused. With only a CSV, the CSV is the record.
* **Torn lines.** A last line left half-written by a killed process is cut.
* **One model per file.** `check_provenance` refuses to append to rows of another checkpoint
  digest or config digest (`MixedCheckpoints`, exit 2) unless mixing is asked for.

Each row is appended to the JSONL, then to the CSV, each flushed and fsynced. Shards write their
own files; `cat`ing them merges them, since only shard 0 writes the CSV header. Files are UTF-8,
with file names that are not UTF-8 kept byte for byte (surrogate escapes).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
from typing import Iterable

from vqa_jax.scoring import output_lock
from vqa_jax.scoring import provenance

CSV_FIELDS = ("path", "score", "mos", "score_01", "error", "warning", "size", "mtime_ns",
              *provenance.FIELDS)
Key = tuple[str, int, int]  # (path, size, mtime_ns)
ENCODING = dict(encoding="utf-8", errors="surrogateescape")


class OutputError(OSError):
  """An output file or folder that cannot be created, written or safely continued."""


class OutputExists(OutputError):
  """An output file already holds rows and the run was not asked to resume it."""


class MixedCheckpoints(OutputError):
  """Resuming would append rows of another checkpoint or config to the file's rows."""


OutputLocked = output_lock.OutputLocked
ERRORS = (OutputError, OutputLocked)  # what `score` reports as exit code 2


def file_key(path: str) -> Key:
  """(path, size, mtime_ns) of a file; (path, -1, -1) when it cannot be stat'ed."""
  try:
    stat = os.stat(path)
  except OSError:
    return path, -1, -1
  return path, stat.st_size, stat.st_mtime_ns


def row_key(row: dict, where: str) -> Key:
  """The (path, size, mtime_ns) of a result row; OutputError naming `where` when it has none."""
  try:
    return row["path"], int(row["size"]), int(row["mtime_ns"])
  except (KeyError, TypeError, ValueError) as e:
    raise OutputError(f"{where}: not a result row (no path, size and mtime_ns: {e!r})") from None


def prepare_folder(path: str) -> None:
  """Creates the folder `path` will be written in; OutputError when that is impossible."""
  folder = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise OutputError(f"cannot create the output folder {folder} for {path}: {e}") from e
  if not os.access(folder, os.W_OK):
    raise OutputError(f"output folder {folder} is not writable")


def _complete_text(path: str) -> tuple[str, bool]:
  """(the text of `path` up to its last newline, whether a torn last line follows); ('', False)
  for a missing file."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except FileNotFoundError:
    return "", False
  except OSError as e:
    raise OutputError(f"cannot read {path}: {e}") from e
  end = data.rfind(b"\n") + 1
  return data[:end].decode(**ENCODING), end < len(data)


def cut_torn_line(path: str) -> None:
  """Truncates `path` after its last newline (a line a killed writer left half-written)."""
  with open(path, "rb+") as f:
    data = f.read()
    if data and not data.endswith(b"\n"):
      f.truncate(data.rfind(b"\n") + 1)


def parse_jsonl(path: str, text: str) -> list[dict]:
  """The rows of a JSON-lines result file's text; OutputError naming the first bad line."""
  rows = []
  for number, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError as e:
      raise OutputError(f"{path}:{number}: not a JSON result row ({e}); fix or delete that "
                        "line") from None
    if not isinstance(row, dict):
      raise OutputError(f"{path}:{number}: not a JSON result row (a {type(row).__name__})")
    row_key(row, f"{path}:{number}")
    rows.append(row)
  return rows


def parse_csv(path: str, text: str) -> list[dict]:
  """The rows of a CSV result file's text (header rows skipped; a file without one, a shard's,
  has CSV_FIELDS' columns); cells are strings, empty ones left out."""
  rows, fields = [], CSV_FIELDS
  reader = csv.reader(io.StringIO(text, newline=""))
  for cells in reader:
    if not cells:
      continue
    if cells[0] == "path":
      fields = cells
      continue
    row = {k: v for k, v in zip(fields, cells) if v != ""}
    row_key(row, f"{path}:{reader.line_num}")
    rows.append(row)
  return rows


def csv_line(row: dict) -> str:
  """One CSV line of a result row (fields CSV_FIELDS; absent and None are empty)."""
  buffer = io.StringIO()
  csv.writer(buffer).writerow(["" if row.get(k) is None else row[k] for k in CSV_FIELDS])
  return buffer.getvalue()


def csv_text(rows: Iterable[dict], header: bool) -> str:
  """The whole CSV of `rows` (after a header line when `header`)."""
  lines = [csv_line(dict(zip(CSV_FIELDS, CSV_FIELDS)))] if header else []
  return "".join(lines + [csv_line(row) for row in rows])


def replace_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically (a temporary file beside it, fsynced, renamed over it)."""
  temporary = f"{path}.tmp-{os.getpid()}"
  try:
    with open(temporary, "w", newline="", **ENCODING) as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
    folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
      os.fsync(folder)
    finally:
      os.close(folder)
  except OSError as e:
    raise OutputError(f"cannot rewrite {path}: {e}") from e
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def _refuse_existing(path: str, rows: list[dict], resume: bool) -> None:
  """OutputExists when `path` holds rows and the run does not resume it."""
  if rows and not resume:
    raise OutputExists(
        f"{path} already holds {len(rows)} result rows, and score never overwrites results: add "
        "--resume to continue it (the videos it holds are skipped, new rows appended), or give "
        "another output file")


class ResultFiles:
  """The JSON-lines and CSV files of one scoring process (either may be None): locked, checked
  and repaired when opened (module docstring), then appended to a row at a time."""

  def __init__(self, jsonl_path: str | None, csv_path: str | None, resume: bool = False,
               write_header: bool = True):
    self.paths = [p for p in (jsonl_path, csv_path) if p]
    self._locks = [output_lock.OutputLock(p) for p in self.paths]
    self._files = []
    if jsonl_path and csv_path and os.path.realpath(jsonl_path) == os.path.realpath(csv_path):
      raise OutputError(f"--jsonl and --csv name the same file {jsonl_path}")
    for path in self.paths:
      prepare_folder(path)
    try:
      for lock in self._locks:
        try:
          lock.acquire()
        except OutputLocked:
          raise
        except OSError as e:
          raise OutputError(f"cannot create the lock file {lock.lock_path}: {e}") from None
      self.record_path = jsonl_path or csv_path
      self._record_is_jsonl = bool(jsonl_path)
      self.rows = self._open(jsonl_path, csv_path, resume, write_header)
    except BaseException:
      self.close()
      raise

  def _open(self, jsonl_path: str | None, csv_path: str | None, resume: bool,
            write_header: bool) -> list[dict]:
    """Reads the record, refuses what must be refused, repairs and opens the files; the rows."""
    rows = []
    if jsonl_path:
      text, torn = _complete_text(jsonl_path)
      rows = parse_jsonl(jsonl_path, text)
      _refuse_existing(jsonl_path, rows, resume)
      if torn:
        cut_torn_line(jsonl_path)
    if csv_path:
      text, torn = _complete_text(csv_path)
      csv_rows = parse_csv(csv_path, text)
      _refuse_existing(csv_path, csv_rows, resume)
      if jsonl_path:
        self._check_derived(csv_path, csv_rows, rows)
      else:
        rows = csv_rows
      derived = csv_text(rows, write_header)
      if torn or text != derived:
        replace_text(csv_path, derived)
    for path, kind in ((jsonl_path, "jsonl"), (csv_path, "csv")):
      if path:
        try:
          self._files.append((open(path, "a", newline="", **ENCODING), kind))
        except OSError as e:
          raise OutputError(f"cannot open {path} for writing: {e}") from e
    return rows

  def _check_derived(self, csv_path: str, csv_rows: list[dict], jsonl_rows: list[dict]) -> None:
    """OutputError when the CSV holds rows the JSONL lacks (it was not written beside it)."""
    extra = (collections.Counter(row_key(r, csv_path) for r in csv_rows)
             - collections.Counter(row_key(r, self.record_path) for r in jsonl_rows))
    if extra:
      raise OutputError(
          f"{csv_path} holds {sum(extra.values())} rows that {self.record_path} lacks (e.g. "
          f"{next(iter(extra))[0]}), so it was not written beside it; the CSV is rebuilt from the "
          "JSON lines: give another --csv, or that CSV alone")

  def saved(self) -> int:
    """The number of complete rows in the record file now, read back from it (also right after an
    interruption inside `write`); 0 without output files."""
    if not self.record_path:
      return 0
    text, _ = _complete_text(self.record_path)
    parse = parse_jsonl if self._record_is_jsonl else parse_csv
    return len(parse(self.record_path, text))

  @property
  def done(self) -> set[Key]:
    """The (path, size, mtime_ns) of every recorded row (what --resume skips)."""
    return {row_key(row, self.record_path) for row in self.rows}

  def check_provenance(self, expected: dict, allow_mixed: bool = False) -> None:
    """MixedCheckpoints when recorded rows have another checkpoint or config digest than
    `expected` (`provenance.fields`), unless `allow_mixed`."""
    problem = provenance.mixed_rows_problem(self.rows, expected, self.record_path or "")
    if problem and not allow_mixed:
      raise MixedCheckpoints(problem)

  def write(self, row: dict) -> None:
    """Appends one result row to every file, the record (JSONL) first, and makes it durable;
    `rows` counts it once it is in the record."""
    for index, (f, kind) in enumerate(self._files):
      f.write(json.dumps(row) + "\n" if kind == "jsonl" else csv_line(row))
      f.flush()
      os.fsync(f.fileno())
      if index == 0:
        self.rows.append(row)

  def close(self) -> None:
    """Closes the files and releases their locks."""
    for f, _ in self._files:
      f.close()
    self._files = []
    for lock in self._locks:
      lock.release()

  def __enter__(self) -> "ResultFiles":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def pending(videos: Iterable[str], done: set[Key]) -> list[str]:
  """The videos whose (path, size, mtime_ns) is not among `done`."""
  return [video for video in videos if file_key(video) not in done]
