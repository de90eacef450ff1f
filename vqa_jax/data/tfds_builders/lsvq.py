"""LSVQ: 39k in-the-wild videos with MOS on a 0-100 scale; train, test and test_1080p splits."""

from vqa_jax.data.tfds_builders import base


class Lsvq(base.VqaLabelFileBuilder):
  """LSVQ video paths and MOS (0-100): train (28,056), test (7,186), test_1080p (3,573)."""

  name = "lsvq"
  LABEL_FILES = {"train": "train_labels.txt", "test": "labels_test.txt",
                 "test_1080p": "labels_1080p.txt"}
  HOMEPAGE = "https://github.com/baidut/PatchVQ"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Place in the manual folder:
    train_labels.txt    FAST-VQA label file of the train split (`<batch>/<name>.mp4, -1, -1, MOS`)
    labels_test.txt     label file of the test split
    labels_1080p.txt    label file of the test_1080p split
    yfcc-batch*/        video folders as in the label files, e.g. yfcc-batch1/722.mp4
    ia-batch*/          e.g. ia-batch1/<name>.mp4
    backup/, backup2/   the few videos the label files list there
  """
