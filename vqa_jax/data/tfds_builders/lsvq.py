"""LSVQ: 39k in-the-wild videos with MOS on a 0-100 scale; train, test and test_1080p splits."""

import os
from typing import Mapping

from vqa_jax.data.tfds_builders import base


class Lsvq(base.VqaLabelFileBuilder):
  """LSVQ video paths and MOS (0-100): train (28,056), test (7,186), test_1080p (3,573)."""

  name = "lsvq"
  LABEL_FILES = {"train": "train_labels.txt", "test": "labels_test.txt",
                 "test_1080p": "labels_1080p.txt"}
  # The official release's csv files (used when the FAST-VQA label files are absent).
  CSV_LABEL_FILES = {"train": "labels_train_test.csv#train",
                     "test": "labels_train_test.csv#test",
                     "test_1080p": "labels_test_1080p.csv"}
  HOMEPAGE = "https://github.com/baidut/PatchVQ"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Place in the manual folder either the FAST-VQA label files
    train_labels.txt    label file of the train split (`<batch>/<name>.mp4, -1, -1, MOS`)
    labels_test.txt     label file of the test split
    labels_1080p.txt    label file of the test_1080p split
  or the official LSVQ csv files (used when train_labels.txt is absent)
    labels_train_test.csv   train (is_test false) and test (is_test true) rows
    labels_test_1080p.csv   the test_1080p rows
  and the videos as the label files name them (csv names get `.mp4` appended):
    yfcc-batch*/        e.g. yfcc-batch1/722.mp4
    ia-batch*/          e.g. ia-batch1/<name>.mp4
    backup/, backup2/   the few videos the label files list there
  """

  def label_files(self, root: str) -> Mapping[str, str]:
    """The FAST-VQA label files, or the official csv files when train_labels.txt is absent."""
    if (not os.path.isfile(os.path.join(root, self.LABEL_FILES["train"]))
        and os.path.isfile(os.path.join(root, "labels_train_test.csv"))):
      return self.CSV_LABEL_FILES
    return self.LABEL_FILES
