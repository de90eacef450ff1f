"""FAST-VQA label files: real files from ../shared/labels, and errors that name the file and line."""

import os

import ml_collections
import numpy as np
import pytest

from vqa_jax.data import labels
from vqa_jax.data import sources
from vqa_jax.data.labels import LabelFileError
from vqa_jax.data.labels import parse_spec
from vqa_jax.data.labels import read_labels

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


# The official LSVQ csv (paper §9): header-detected, columns by name, is_test subsets.
LSVQ_HEADER = ("name,p1,p2,p3,height,width,mos_p1,mos_p2,mos_p3,mos,frame_number,fn_last_frame,"
               "is_test,is_valid")


def write_lsvq_csv(path, rows):
  """Writes an LSVQ-style csv: the header, then the given row strings."""
  path.write_text(LSVQ_HEADER + "\n" + "".join(r + "\n" for r in rows))
  return str(path)


def test_lsvq_csv_by_header_with_subsets(tmp_path):
  path = write_lsvq_csv(tmp_path / "labels_train_test.csv", [
      "yfcc-batch1/722,a,b,c,540,960,1,2,3,61.5,240,239,False,True",
      "ia-batch2/clip.mp4,a,b,c,720,1280,1,2,3,40.25,300,299,True,True",
      "",
      "yfcc-batch3/9,a,b,c,480,640,1,2,3,70,150,149,0,False"])
  every = read_labels(path, "/data")
  assert [(e.path, e.mos) for e in every] == [
      ("/data/yfcc-batch1/722.mp4", 61.5), ("/data/ia-batch2/clip.mp4", 40.25),
      ("/data/yfcc-batch3/9.mp4", 70.0)]
  assert [e.mos for e in read_labels(path, "/d", "train")] == [61.5, 70.0]
  assert [e.mos for e in read_labels(path, "/d", "test")] == [40.25]


def test_lsvq_csv_short_rows_and_errors_name_file_and_line(tmp_path):
  path = write_lsvq_csv(tmp_path / "a.csv", ["ia-batch1/x,720,1280,55.5,300"])
  assert [(e.path, e.mos) for e in read_labels(path, "r")] == [("r/ia-batch1/x.mp4", 55.5)]
  with pytest.raises(LabelFileError, match=r"a\.csv:2: no is_test field"):
    read_labels(path, "r", "train")
  bad = write_lsvq_csv(tmp_path / "b.csv", ["v1,a,b,c,1,2,3,4,5,50,9,8,False,True",
                                            "v2,a,b,c,1,2,3,4,5,high,9,8,False,True"])
  with pytest.raises(LabelFileError, match=r"b\.csv:3: MOS 'high' is not a number"):
    read_labels(bad, "r")
  short = write_lsvq_csv(tmp_path / "c.csv", ["v1,a,b"])
  with pytest.raises(LabelFileError, match=r"c\.csv:2: expected 14 fields"):
    read_labels(short, "r")
  flag = write_lsvq_csv(tmp_path / "d.csv", ["v1,a,b,c,1,2,3,4,5,50,9,8,maybe,True"])
  with pytest.raises(LabelFileError, match=r"d\.csv:2: is_test 'maybe'"):
    read_labels(flag, "r", "test")


def test_subset_of_a_fast_vqa_file_is_an_error(tmp_path):
  path = tmp_path / "labels.txt"
  path.write_text("a.mp4, -1, -1, 3.0\n")
  with pytest.raises(LabelFileError, match="labels.txt: subset 'train' needs an LSVQ csv"):
    read_labels(str(path), "r", "train")
  assert parse_spec("labels_train_test.csv#test") == ("labels_train_test.csv", "test")
  assert parse_spec("x.txt") == ("x.txt", None)


def test_duplicate_video_names_both_lines(tmp_path):
  path = tmp_path / "labels.txt"
  path.write_text("a.mp4, 8.0, 25.0, 3.1\nb.mp4, 8.0, 25.0, 2.0\n\na.mp4, 8.0, 25.0, 4.0\n")
  with pytest.raises(LabelFileError, match=rf"{path}:4: video 'a.mp4' is already listed at line 1"):
    read_labels(str(path), "r")
  csv_path = write_lsvq_csv(tmp_path / "d.csv", ["v1,a,b,c,1,2,3,4,5,50,9,8,False,True",
                                                 "v1,a,b,c,1,2,3,4,5,60,9,8,False,True"])
  with pytest.raises(LabelFileError, match=r"d\.csv:3: video 'v1.mp4' is already listed at line 2"):
    read_labels(csv_path, "r")


def test_non_utf8_byte_names_file_line_and_byte(tmp_path):
  path = tmp_path / "labels.txt"
  path.write_bytes("a.mp4, 8.0, 25.0, 3.1\nb_caf\xe9.mp4, 8.0, 25.0, 2.0\n".encode("latin-1"))
  with pytest.raises(LabelFileError, match=rf"{path}:2: byte 0xe9 at column 6 is not UTF-8"):
    read_labels(str(path), "r")


def test_label_source_splits_at_the_colon_after_an_existing_label_file(tmp_path):
  folder = tmp_path / "run:1"
  folder.mkdir()
  (folder / "labels.txt").write_text("a.mp4, 8.0, 25.0, 3.1\n")
  label_file = str(folder / "labels.txt")
  assert labels.split_source(f"{label_file}:/data/x:y") == (label_file, "/data/x:y")
  assert labels.split_source(f"{label_file}#train:/d") == (f"{label_file}#train", "/d")
  assert labels.split_source("missing.txt:/d:e") == ("missing.txt", "/d:e")  # read names it
  (tmp_path / "run").write_text("")  # now 'TMP/run' is a file too: two readings
  with pytest.raises(ValueError, match="ambiguous"):
    labels.split_source(f"{label_file}:/d")


def test_videos_in_two_splits_are_listed(tmp_path, caplog):
  (tmp_path / "train.txt").write_text("a.mp4, 8.0, 25.0, 3.1\nb.mp4, 8.0, 25.0, 2.0\n")
  (tmp_path / "test.txt").write_text("c.mp4, 8.0, 25.0, 3.1\nb.mp4, 8.0, 25.0, 2.0\n")
  root = str(tmp_path)
  with caplog.at_level("WARNING"):
    splits = sources.label_file_splits(ml_collections.ConfigDict({
        "train": f"{tmp_path}/train.txt:{root}", "test": f"{tmp_path}/test.txt:{root}"}))
  assert len(splits["train"]) == 2
  assert labels.overlapping_videos(splits) == {("test", "train"): [f"{root}/b.mp4"]}
  assert "1 videos are in both split 'test' and split 'train'" in caplog.text
  assert f"{root}/b.mp4" in caplog.text and f"{root}/a.mp4" not in caplog.text
