"""FAST-VQA label files: real files from ../shared/labels, and errors that name the file and line."""

import os

import numpy as np
import pytest

from vqa_jax.data import labels

# Counts and MOS statistics (mean, population std) of paper §9.
REAL_FILES = [
    ("KoNViD/labels.txt", 1200, 3.030, 0.641),
    ("LIVE_VQC/labels.txt", 585, 63.29, 17.06),
    ("LSVQ/train_labels.txt", 28056, 59.78, 10.67),
    ("LSVQ/labels_1080p.txt", 3573, 66.36, 10.39),
]


@pytest.mark.parametrize("relpath,count,mean,std", REAL_FILES)
def test_real_label_files(shared_dir, relpath, count, mean, std):
  entries = labels.read_labels(str(shared_dir / "labels" / relpath), "/data")
  mos = np.array([e.mos for e in entries])
  assert len(entries) == count
  assert mos.mean() == pytest.approx(mean, abs=0.005)
  assert mos.std() == pytest.approx(std, abs=0.005)
  assert all(e.path.startswith("/data/") for e in entries)


def test_parse_and_format_round_trip():
  line = labels.format_line("Video/A001.mp4", 10.002367, 30.0, 80.232)
  assert line == "Video/A001.mp4, 10.002367, 30.0, 80.232"
  assert labels.parse_line(line, "f.txt", 1) == ("Video/A001.mp4", 80.232)


@pytest.mark.parametrize("bad,message", [
    ("a.mp4, 8.0, 25.0", "expected 4 comma-separated fields"),
    ("a.mp4, 8.0, 25.0, good", "MOS 'good' is not a number"),
    ("a.mp4, 8.0, 25.0, nan", "is not finite"),
    (", 8.0, 25.0, 3.2", "empty video path"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
  path = tmp_path / "labels.txt"
  path.write_text("ok.mp4, 8.0, 25.0, 3.1\n\n" + bad + "\n")
  with pytest.raises(labels.LabelFileError, match=rf"{path}:3: .*{message}"):
    labels.read_labels(str(path), str(tmp_path))


def test_empty_file_is_an_error_and_missing_videos_are_listed(tmp_path):
  empty = tmp_path / "empty.txt"
  empty.write_text("\n")
  with pytest.raises(labels.LabelFileError, match="no labelled videos"):
    labels.read_labels(str(empty), str(tmp_path))
  (tmp_path / "here.mp4").write_bytes(b"x")
  labels.write_labels(str(tmp_path / "l.txt"), [("here.mp4", -1, -1, 1.0), ("gone.mp4", -1, -1, 2.0)])
  entries = labels.read_labels(str(tmp_path / "l.txt"), str(tmp_path))
  assert labels.missing_videos(entries) == [os.path.join(str(tmp_path), "gone.mp4")]
