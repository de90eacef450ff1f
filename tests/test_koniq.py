"""KonIQ-10k: the scores csv (labels.py) and the TFDS builder over a fake manual_dir."""

import os

import cv2
import numpy as np
import pytest

from vqa_jax.data import labels

# The release's header, as public loaders and READMEs quote it (quoted fields, as in the csv).
HEADER = '"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"'
ROWS = [
    ("826373.jpg", (0, 3, 40, 60, 2), 3.5603, 0.6198, 64.6837),
    ("10007357.jpg", (1, 15, 70, 20, 0), 3.0283, 0.5819, 54.5451),
    ("10016001.jpg", (10, 40, 50, 5, 0), 2.4762, 0.7432, 41.2012),
]


def write_csv(path, rows=ROWS, header=HEADER) -> str:
  """Writes a KonIQ-style csv with quoted names; returns its path."""
  lines = [header]
  for name, counts, mos, sd, zscore in rows:
    lines.append(f'"{name}",' + ",".join(map(str, counts)) + f",{sum(counts)},{mos},{sd},{zscore}")
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def test_reads_mos_zscore_by_default_and_mos_on_request(tmp_path):
  csv_file = write_csv(tmp_path / "koniq10k_scores_and_distributions.csv")
  entries = labels.read_labels(csv_file, "/data/koniq/1024x768")
  assert [(e.path, e.mos) for e in entries] == [
      (f"/data/koniq/1024x768/{name}", zscore) for name, _, _, _, zscore in ROWS]
  entries = labels.read_labels(csv_file, "/r", *labels.parse_spec("x#MOS")[1:])
  assert [e.mos for e in entries] == [mos for _, _, mos, _, _ in ROWS]


def test_unquoted_header_column_order_and_byte_order_mark_do_not_matter(tmp_path):
  path = tmp_path / "k.csv"
  path.write_text("\ufeffMOS_zscore,MOS,image_name\n50.5,3.1,a.jpg\n\n20.25,2.0,b.jpg\n",
                  encoding="utf-8")
  entries = labels.read_labels(str(path), "r")
  assert [(e.path, e.mos) for e in entries] == [("r/a.jpg", 50.5), ("r/b.jpg", 20.25)]


@pytest.mark.parametrize("row,message", [
    ('"x.jpg",1,2,3', r"k.csv:3: expected 10 fields as the header, got 4"),
    ('"x.jpg",0,0,1,0,0,1,3.0,0.1,high', r"k.csv:3: MOS 'high' is not a number"),
    ('"",0,0,1,0,0,1,3.0,0.1,50', r"k.csv:3: empty image name"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
  path = tmp_path / "k.csv"
  write_csv(path, ROWS[:1])
  path.write_text(path.read_text() + row + "\n")
  with pytest.raises(labels.LabelFileError, match=message):
    labels.read_labels(str(path), "r")


def test_unknown_score_column_is_an_error(tmp_path):
  path = write_csv(tmp_path / "k.csv")
  with pytest.raises(labels.LabelFileError, match=r"k.csv:1: score column 'SD' must be one of"):
    labels.read_labels(path, "r", "SD")


def test_other_formats_still_reject_unknown_subsets(tmp_path):
  path = tmp_path / "l.txt"
  path.write_text("a.mp4, 1, 1, 3.0\n")
  with pytest.raises(ValueError, match="subset must be one of"):
    labels.read_labels(str(path), "r", "MOS")


# ---------------------------------------------------------------------------------------------
# TFDS builder.


def make_manual_dir(manual_dir) -> None:
  """The documented layout: the csv and 1024x768/<image_name> (tiny PNG-coded jpg names)."""
  os.makedirs(manual_dir / "1024x768")
  write_csv(manual_dir / "koniq10k_scores_and_distributions.csv")
  for i, (name, *_) in enumerate(ROWS):
    cv2.imwrite(str(manual_dir / "1024x768" / name), np.full((6, 8, 3), 40 * i, np.uint8))


def prepare(manual_dir, data_dir, config="mos_zscore"):
  """Builds koniq_10k/<config> from `manual_dir`; returns the builder."""
  tfds = pytest.importorskip("tensorflow_datasets")
  from vqa_jax.data.tfds_builders import koniq_10k  # pylint: disable=g-import-not-at-top
  builder = koniq_10k.Koniq10k(config=config, data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


@pytest.mark.parametrize("config,column", [("mos_zscore", 4), ("mos", 2)])
def test_builder_stores_paths_and_scores(tmp_path, config, column):
  tfds = pytest.importorskip("tensorflow_datasets")
  manual_dir = tmp_path / "manual"
  make_manual_dir(manual_dir)
  builder = prepare(manual_dir, tmp_path / "data", config)
  examples = list(tfds.as_numpy(builder.as_dataset(split="full")))
  assert builder.info.splits["full"].num_examples == 3
  assert [e["relpath"].decode() for e in examples] == [f"1024x768/{r[0]}" for r in ROWS]
  assert [e["path"].decode() for e in examples] == [
      os.path.join(str(manual_dir), "1024x768", r[0]) for r in ROWS]
  np.testing.assert_array_equal([e["mos"] for e in examples],
                                np.array([r[column] for r in ROWS], np.float32))


def test_builder_names_what_is_missing(tmp_path):
  manual_dir = tmp_path / "manual"
  make_manual_dir(manual_dir)
  os.remove(manual_dir / "1024x768" / "10007357.jpg")
  with pytest.raises(FileNotFoundError, match=r"1 of 3 images listed in .*csv are missing, "
                     r"e.g. .*1024x768/10007357\.jpg"):
    prepare(manual_dir, tmp_path / "data")
  os.remove(manual_dir / "koniq10k_scores_and_distributions.csv")
  with pytest.raises(FileNotFoundError, match="label file .*koniq10k_scores_and_distributions"):
    prepare(manual_dir, tmp_path / "data2")
