"""Label files in the FAST-VQA format: `relpath, duration, fps, MOS` per line."""

import dataclasses
import os


class LabelFileError(ValueError):
  """A label file line that cannot be parsed; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One labelled video: its absolute path and mean opinion score."""

  path: str
  mos: float


def parse_line(line: str, label_file: str, line_number: int) -> tuple[str, float]:
  """Parses one `relpath, duration, fps, MOS` line into (relpath, MOS)."""
  fields = [f.strip() for f in line.split(",")]
  where = f"{label_file}:{line_number}"
  if len(fields) != 4:
    raise LabelFileError(f"{where}: expected 4 comma-separated fields "
                         f"'relpath, duration, fps, MOS', got {len(fields)}: {line!r}")
  relpath, _, _, mos_text = fields
  if not relpath:
    raise LabelFileError(f"{where}: empty video path")
  try:
    mos = float(mos_text)
  except ValueError:
    raise LabelFileError(f"{where}: MOS {mos_text!r} is not a number") from None
  if mos != mos or mos in (float("inf"), float("-inf")):
    raise LabelFileError(f"{where}: MOS {mos_text!r} is not finite")
  return relpath, mos


def read_labels(label_file: str, data_root: str) -> list[Entry]:
  """Reads a FAST-VQA label file; paths are joined to `data_root`. Blank lines are skipped."""
  entries = []
  with open(label_file, encoding="utf-8") as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      relpath, mos = parse_line(line.rstrip("\n"), label_file, line_number)
      entries.append(Entry(path=os.path.join(data_root, relpath), mos=mos))
  if not entries:
    raise LabelFileError(f"{label_file}: no labelled videos")
  return entries


def format_line(relpath: str, duration: float, fps: float, mos: float) -> str:
  """Formats one label line exactly as the FAST-VQA files do (a space after each comma)."""
  return f"{relpath}, {duration}, {fps}, {mos}"


def write_labels(label_file: str, rows: list[tuple[str, float, float, float]]) -> None:
  """Writes (relpath, duration, fps, MOS) rows as a FAST-VQA label file."""
  with open(label_file, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(format_line(*row) + "\n")


def missing_videos(entries: list[Entry]) -> list[str]:
  """Returns the paths of entries whose video file does not exist."""
  return [e.path for e in entries if not os.path.isfile(e.path)]
