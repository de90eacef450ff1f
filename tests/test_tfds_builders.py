"""TFDS builders over a fake manual_dir made from the tiny synthetic dataset."""

import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.helpers import SHARED_DIR
from tests.tfds_layouts import LAYOUTS
from tests.tfds_layouts import make_manual_dir
from tests.tfds_layouts import parse_label_file
from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import tfds_builders

# Folder of the real label files under ../shared/labels.
SHARED_LABEL_DIRS = {tfds_builders.Konvid1k: "KoNViD", tfds_builders.LiveVqc: "LIVE_VQC",
                     tfds_builders.YoutubeUgc: "YouTubeUGC", tfds_builders.Lsvq: "LSVQ"}


def prepare(builder_cls, manual_dir, data_dir):
  """Builds the dataset from `manual_dir` into `data_dir`; returns the builder."""
  builder = builder_cls(data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


@pytest.mark.parametrize("builder_cls", list(LAYOUTS), ids=lambda c: c.name)
def test_builds_paths_and_mos_of_label_files(builder_cls, synthetic_root, tmp_path):
  manual_dir = tmp_path / "manual"
  make_manual_dir(synthetic_root, str(manual_dir), LAYOUTS[builder_cls])
  builder = prepare(builder_cls, manual_dir, tmp_path / "data")
  assert set(builder.info.splits) == set(builder_cls.LABEL_FILES)
  for split, (label_name, _, _) in LAYOUTS[builder_cls].items():
    expected = parse_label_file(str(manual_dir / label_name))
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert builder.info.splits[split].num_examples == len(expected) == len(examples)
    assert [e["relpath"].decode() for e in examples] == [r for r, _ in expected]
    assert [e["path"].decode() for e in examples] == [
        os.path.join(str(manual_dir), r) for r, _ in expected]
    assert all(os.path.isabs(e["path"].decode()) and os.path.isfile(e["path"].decode())
               for e in examples)
    np.testing.assert_array_equal([e["mos"] for e in examples],
                                  np.array([m for _, m in expected], np.float32))
    assert examples[0]["mos"].dtype == np.float32


def test_tfds_load_with_manual_dir(synthetic_root, tmp_path):
  manual_dir = tmp_path / "manual"
  make_manual_dir(synthetic_root, str(manual_dir), LAYOUTS[tfds_builders.LiveVqc])
  ds = tfds.load("live_vqc", split="full", data_dir=str(tmp_path / "data"),
                 download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                     manual_dir=str(manual_dir))})
  assert len(list(ds)) == SyntheticSpec.tiny().num_test


def test_missing_video_raises_naming_it(synthetic_root, tmp_path):
  manual_dir = tmp_path / "manual"
  make_manual_dir(synthetic_root, str(manual_dir), LAYOUTS[tfds_builders.Lsvq])
  os.remove(manual_dir / "labels_test.txt")
  with pytest.raises(FileNotFoundError, match="labels_test.txt"):
    prepare(tfds_builders.Lsvq, manual_dir, tmp_path / "data")
  make_manual_dir(synthetic_root, str(manual_dir), LAYOUTS[tfds_builders.Lsvq])
  os.remove(manual_dir / "backup" / "3.mp4")
  with pytest.raises(FileNotFoundError, match=r"1 of 8 videos .*backup/3\.mp4"):
    prepare(tfds_builders.Lsvq, manual_dir, tmp_path / "data")


def test_missing_videos_message_lists_first_few(tmp_path):
  (tmp_path / "labels.txt").write_text("".join(f"v{i}.mp4, -1, -1, 3.0\n" for i in range(8)))
  with pytest.raises(FileNotFoundError, match=r"8 of 8 videos .*v4\.mp4 and 3 more$"):
    tfds_builders.base.read_split(str(tmp_path), "labels.txt")


@pytest.mark.parametrize("builder_cls", list(LAYOUTS), ids=lambda c: c.name)
def test_layout_matches_shared_label_files(builder_cls):
  label_dir = SHARED_DIR / "labels" / SHARED_LABEL_DIRS[builder_cls]
  if not label_dir.is_dir():
    pytest.skip(f"{label_dir} is not available")
  instructions = builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS
  for name in builder_cls.LABEL_FILES.values():
    assert name in instructions
    relpaths = [r for r, _ in parse_label_file(str(label_dir / name))]
    folders = {r.split("/")[0].rstrip("0123456789") if "/" in r else "*.mp4" for r in relpaths}
    assert all(folder in instructions for folder in folders), (name, folders)


def test_lsvq_reads_the_official_csv(synthetic_root, tmp_path):
  """Without train_labels.txt the LSVQ builder reads labels_train_test.csv / labels_test_1080p.csv."""
  manual_dir = tmp_path / "manual"
  lines = open(os.path.join(synthetic_root, "labels", "train.txt")).read().splitlines()
  header = "name,height,width,mos,frame_number,is_test,is_valid\n"
  rows, expected = [], {"train": [], "test": []}
  for i, line in enumerate(lines):
    src, _, _, mos = (f.strip() for f in line.split(","))
    name = f"yfcc-batch1/{700 + i}"
    os.makedirs(manual_dir / "yfcc-batch1", exist_ok=True)
    shutil.copyfile(os.path.join(synthetic_root, src), manual_dir / f"{name}.mp4")
    split = "test" if i % 3 == 0 else "train"
    rows.append(f"{name},64,80,{mos},8,{split == 'test'},True\n")
    expected[split].append((f"{name}.mp4", float(mos)))
  (manual_dir / "labels_train_test.csv").write_text(header + "".join(rows))
  (manual_dir / "labels_test_1080p.csv").write_text(
      "name,height,width,mos,frame_number,is_valid\n" + rows[1].rsplit(",", 2)[0] + ",True\n")
  expected["test_1080p"] = [expected["train"][0]]
  builder = prepare(tfds_builders.Lsvq, manual_dir, tmp_path / "data")
  for split, rows_expected in expected.items():
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert [(e["relpath"].decode(), float(e["mos"])) for e in examples] == [
        (r, float(np.float32(m))) for r, m in rows_expected]
