"""Label files: the FAST-VQA format (`relpath, duration, fps, MOS`), the LSVQ and KonIQ-10k csv.

The format is detected from the first line: a header naming `name` and `mos` columns is the LSVQ
release's csv (`labels_train_test.csv`, `labels_test_1080p.csv`: name, p1, p2, p3, height, width,
mos_p1, mos_p2, mos_p3, mos, frame_number, ..., is_test, is_valid; paper §9). Its names carry no
extension, so `.mp4` is appended to names without one. Rows as long as the header are read by
column name; 5-field rows are read as (name, height, width, mos, frame_number), the short layout
SimpleVQA's LSVQ reader expects for part of the release. `subset` 'train' / 'test' keeps the rows
whose is_test is false / true (an error for a file without that column).

A header naming `image_name` and `MOS` columns is KonIQ-10k's
`koniq10k_scores_and_distributions.csv` (image quality; columns image_name, c1, c2, c3, c4, c5,
c_total, MOS, SD, MOS_zscore: vote counts per rating 1-5, their total, the MOS on 1-5, its
standard deviation and the MOS from z-scored ratings rescaled to about 0-100; the column names
as read by public loaders of the release, e.g. SSL92/hyperIQA `folders.py::Koniq_10kFolder`
(`image_name`, `MOS_zscore`, images in `1024x768/`) and SAMA's `IQA/demo_train_iqa_baseline.py`;
the full header as quoted in public READMEs). Rows are read by column name (quoted or not); the
score is `MOS_zscore` (SAMA's IQA reader, `IQA/demo_train_iqa_baseline.py::read_info`) unless the
spec names a column: 'koniq10k_scores_and_distributions.csv#MOS'.
"""

import csv
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
  return relpath, _parse_mos(mos_text, where)


CSV_SUBSETS = (None, "train", "test")
CSV_VIDEO_EXTENSION = ".mp4"
_SHORT_ROW = ("name", "height", "width", "mos", "frame_number")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


KONIQ_SCORE_COLUMNS = ("mos_zscore", "mos")
KONIQ_DEFAULT_SCORE = "mos_zscore"


def is_koniq_header(line: str) -> bool:
  """Whether `line` is a KonIQ-10k csv header (names `image_name` and `MOS` columns)."""
  columns = {c.strip().lower() for c in next(csv.reader([line]), [])}
  return {"image_name", "mos"} <= columns


def _read_koniq(label_file: str, lines: list[str], header_line: int,
                score: str | None) -> list[tuple[int, str, float]]:
  """(line number, image_name, score) rows of a KonIQ-10k csv; `score` is a column (default
  MOS_zscore)."""
  column = (score or KONIQ_DEFAULT_SCORE).lower()
  header = [c.strip().lower() for c in next(csv.reader([lines[header_line]]))]
  if column not in KONIQ_SCORE_COLUMNS or column not in header:
    raise LabelFileError(f"{label_file}:{header_line + 1}: score column {score!r} must be one of "
                         f"{KONIQ_SCORE_COLUMNS} and present in the header {header}")
  rows = []
  for line_number, line in enumerate(lines[header_line + 1:], start=header_line + 2):
    if not line.strip():
      continue
    row = [f.strip() for f in next(csv.reader([line]))]
    where = f"{label_file}:{line_number}"
    if len(row) != len(header):
      raise LabelFileError(f"{where}: expected {len(header)} fields as the header, got {len(row)}")
    fields = dict(zip(header, row))
    if not fields["image_name"]:
      raise LabelFileError(f"{where}: empty image name")
    rows.append((line_number, fields["image_name"], _parse_mos(fields[column], where)))
  return rows


def is_csv_header(line: str) -> bool:
  """Whether `line` is an LSVQ csv header (names a `name` and a `mos` column)."""
  columns = {c.strip().lower() for c in line.split(",")}
  return {"name", "mos"} <= columns


def _parse_mos(text: str, where: str) -> float:
  """A finite MOS from `text`, else LabelFileError naming `where` (file:line)."""
  try:
    mos = float(text)
  except ValueError:
    raise LabelFileError(f"{where}: MOS {text!r} is not a number") from None
  if mos != mos or mos in (float("inf"), float("-inf")):
    raise LabelFileError(f"{where}: MOS {text!r} is not finite")
  return mos


def parse_csv_row(row: list[str], header: list[str], where: str,
                  subset: str | None) -> tuple[str, float] | None:
  """(relpath, MOS) of one LSVQ csv row, or None when the row is outside `subset`."""
  if len(row) == len(header):
    fields = dict(zip(header, (f.strip() for f in row)))
  elif len(row) == len(_SHORT_ROW):
    fields = dict(zip(_SHORT_ROW, (f.strip() for f in row)))
  else:
    raise LabelFileError(f"{where}: expected {len(header)} fields as the header (or the "
                         f"{len(_SHORT_ROW)}-field {','.join(_SHORT_ROW)}), got {len(row)}")
  name = fields["name"]
  if not name:
    raise LabelFileError(f"{where}: empty video name")
  if subset is not None:
    if "is_test" not in fields:
      raise LabelFileError(f"{where}: no is_test field, so the row cannot be assigned to the "
                           f"{subset!r} subset")
    flag = fields["is_test"].lower()
    if flag not in _TRUE + _FALSE:
      raise LabelFileError(f"{where}: is_test {fields['is_test']!r} is not a boolean")
    if (flag in _TRUE) != (subset == "test"):
      return None
  relpath = name if os.path.splitext(name)[1] else name + CSV_VIDEO_EXTENSION
  return relpath, _parse_mos(fields["mos"], where)


def _read_csv(label_file: str, lines: list[str], header_line: int,
              subset: str | None) -> list[tuple[int, str, float]]:
  """(line number, relpath, MOS) rows of an LSVQ csv given its lines and its header's 0-based line."""
  header = [c.strip().lower() for c in next(csv.reader([lines[header_line]]))]
  rows = []
  for line_number, line in enumerate(lines[header_line + 1:], start=header_line + 2):
    if not line.strip():
      continue
    row = next(csv.reader([line]))
    parsed = parse_csv_row(row, header, f"{label_file}:{line_number}", subset)
    if parsed is not None:
      rows.append((line_number, *parsed))
  return rows


def read_labels(label_file: str, data_root: str, subset: str | None = None) -> list[Entry]:
  """Reads a FAST-VQA label file, an LSVQ or a KonIQ-10k csv (by header); paths join `data_root`.

  Blank lines are skipped. `subset` ('train' or 'test') selects LSVQ csv rows by is_test; it is
  an error for a FAST-VQA file. For a KonIQ-10k csv it names the score column ('MOS_zscore', the
  default, or 'MOS').
  """
  lines = read_text_lines(label_file)
  first = next((i for i, line in enumerate(lines) if line.strip()), None)
  is_koniq = first is not None and is_koniq_header(lines[first])
  if subset not in CSV_SUBSETS and not is_koniq:
    raise ValueError(f"subset must be one of {CSV_SUBSETS}, got {subset!r}")
  if is_koniq:
    rows = _read_koniq(label_file, lines, first, subset)
  elif first is not None and is_csv_header(lines[first]):
    rows = _read_csv(label_file, lines, first, subset)
  else:
    if subset is not None:
      raise LabelFileError(f"{label_file}: subset {subset!r} needs an LSVQ csv with an is_test "
                           "column, but this is a FAST-VQA label file")
    rows = [(number, *parse_line(line, label_file, number))
            for number, line in enumerate(lines, start=1) if line.strip()]
  if not rows:
    raise LabelFileError(f"{label_file}: no labelled videos")
  check_unique(label_file, [(number, relpath) for number, relpath, _ in rows])
  return [Entry(path=os.path.join(data_root, relpath), mos=mos) for _, relpath, mos in rows]


def read_text_lines(label_file: str) -> list[str]:
  """The lines of a UTF-8 text file (a leading byte-order mark dropped).

  A byte that is not UTF-8 is a LabelFileError naming the file, line and byte (e.g. Latin-1 text).
  """
  with open(label_file, "rb") as f:
    data = f.read()
  try:
    text = data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
    raise LabelFileError(f"{label_file}:{line}: byte 0x{data[e.start]:02x} at column {column} is "
                         "not UTF-8; save the file as UTF-8") from None
  return text.splitlines()


def check_unique(label_file: str, numbered_paths: list[tuple[int, str]]) -> None:
  """Raises LabelFileError naming both lines when a video path is listed twice."""
  first_line = {}
  for number, relpath in numbered_paths:
    if relpath in first_line:
      raise LabelFileError(f"{label_file}:{number}: video {relpath!r} is already listed at line "
                           f"{first_line[relpath]}; each video may be labelled once")
    first_line[relpath] = number


def overlapping_videos(splits: dict[str, list[Entry]]) -> dict[tuple[str, str], list[str]]:
  """{(split a, split b): sorted paths listed in both} for every pair of splits that share videos."""
  paths = {name: {e.path for e in entries} for name, entries in splits.items()}
  names = sorted(paths)
  shared = {(a, b): sorted(paths[a] & paths[b]) for i, a in enumerate(names) for b in names[i + 1:]}
  return {pair: videos for pair, videos in shared.items() if videos}


def split_source(spec: str, exists=os.path.isfile) -> tuple[str, str]:
  """'LABEL_SPEC:DATA_ROOT' -> (label spec, data root); either path may contain colons.

  The split is at the colon before which the label file (without a '#subset' suffix) exists;
  with none existing, at the first colon (reading the file then names it as missing).
  More than one existing candidate is ambiguous: a ValueError lists them.
  """
  colons = [i for i, c in enumerate(spec) if c == ":"]
  if not colons:
    raise ValueError(f"expected 'LABEL_FILE:DATA_ROOT', got {spec!r} (no colon)")
  existing = [i for i in colons if exists(parse_spec(spec[:i])[0])]
  if len(existing) > 1:
    raise ValueError(f"{spec!r} is ambiguous: label files "
                     f"{[parse_spec(spec[:i])[0] for i in existing]} all exist")
  cut = existing[0] if existing else colons[0]
  return spec[:cut], spec[cut + 1:]


def parse_spec(spec: str) -> tuple[str, str | None]:
  """'FILE', 'FILE#train' / 'FILE#test' (LSVQ subset) or 'FILE#MOS' (KonIQ) -> (file, subset)."""
  label_file, sep, subset = spec.partition("#")
  return label_file, (subset if sep else None)


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
