"""Base TFDS builder for VQA datasets given as FAST-VQA label files plus videos in `manual_dir`.

Each example stores the video's absolute path, its path relative to `manual_dir` and its MOS, not
decoded frames (`tfds.features.Video` would shell out to ffmpeg, and the input pipeline samples
fragments from the files itself). Examples keep the order of the label file.
"""

import inspect
import os
from typing import ClassVar, Iterator, Mapping

import numpy as np
import tensorflow_datasets as tfds

from vqa_jax.data import labels

# How many missing videos the error message names.
MAX_MISSING_SHOWN = 5


class VqaLabelFileBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Examples (path, relpath, mos) read from `LABEL_FILES` in the manual folder."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Video paths and MOS from the FAST-VQA label files."}
  # Split name -> label file name in `manual_dir` ('FILE#train' / 'FILE#test' for an LSVQ csv
  # subset); set by each subclass.
  LABEL_FILES: ClassVar[Mapping[str, str]] = {}
  HOMEPAGE: ClassVar[str] = ""

  def _info(self) -> tfds.core.DatasetInfo:
    """Features: absolute video path, path relative to the manual folder, float32 MOS."""
    return tfds.core.DatasetInfo(
        builder=self,
        description=inspect.getdoc(type(self)),
        features=tfds.features.FeaturesDict({
            "path": tfds.features.Text(),
            "relpath": tfds.features.Text(),
            "mos": tfds.features.Scalar(dtype=np.float32),
        }),
        supervised_keys=("path", "mos"),
        disable_shuffling=True,
        homepage=self.HOMEPAGE or None,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    """Reads every split's label file and checks that all its videos exist before generating."""
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    splits = {split: read_split(root, name) for split, name in self.label_files(root).items()}
    return {split: self._generate_examples(root, entries) for split, entries in splits.items()}

  def label_files(self, root: str) -> Mapping[str, str]:
    """Split name -> label file spec to read from the manual folder `root` (LABEL_FILES)."""
    del root
    return self.LABEL_FILES

  def _generate_examples(self, root: str,
                         entries: list[labels.Entry]) -> Iterator[tuple[int, dict]]:
    """Yields (line index, example) for each labelled video."""
    for index, entry in enumerate(entries):
      yield index, {"path": entry.path, "relpath": os.path.relpath(entry.path, root),
                    "mos": np.float32(entry.mos)}


class LabelsTxtBuilder(VqaLabelFileBuilder, skip_registration=True):
  """One split 'full' from `labels.txt` in the manual folder (KoNViD-1k, LIVE-VQC, YouTube-UGC).

  A subclass names its videos, VIDEOS = (glob relative to the manual folder, what they are), and
  the label file's columns after the path when they are not LABEL_COLUMNS'; the manual-folder
  instructions are written from them.
  """

  LABEL_FILES = {"full": "labels.txt"}
  LABEL_COLUMNS: ClassVar[str] = "duration, fps, MOS"
  VIDEOS: ClassVar[tuple[str, str]] = ("*.mp4", "the videos")

  def __init_subclass__(cls, **kwargs):
    """Writes the subclass's MANUAL_DOWNLOAD_INSTRUCTIONS from its VIDEOS and LABEL_COLUMNS."""
    cls.MANUAL_DOWNLOAD_INSTRUCTIONS = labels_txt_instructions(cls.VIDEOS, cls.LABEL_COLUMNS)
    super().__init_subclass__(**kwargs)


def labels_txt_instructions(videos: tuple[str, str], label_columns: str) -> str:
  """The manual folder of a `LabelsTxtBuilder`: labels.txt and the videos (glob, what they are)."""
  glob, what = videos
  where = "" if "/" in glob else ", side by side (no subfolder)"
  width = max(len(glob), len("labels.txt")) + 5
  label_line = f"{glob.replace('*', '<name>')}, {label_columns}"
  return (f"\n  Place in the manual folder{where}:\n"
          f"    {'labels.txt':<{width}}FAST-VQA label file (`{label_line}`)\n"
          f"    {glob:<{width}}{what}\n  ")


def read_split(root: str, label_spec: str) -> list[labels.Entry]:
  """Entries of `root/label_spec` ('FILE' or 'FILE#subset'); FileNotFoundError names missing files."""
  label_file_name, subset = labels.parse_spec(label_spec)
  label_file = os.path.join(root, label_file_name)
  if not os.path.isfile(label_file):
    raise FileNotFoundError(f"Label file {label_file} not found: place {label_file_name} in the "
                            f"manual folder {root} (see MANUAL_DOWNLOAD_INSTRUCTIONS).")
  entries = labels.read_labels(label_file, root, subset)
  missing = labels.missing_videos(entries)
  if missing:
    shown = ", ".join(missing[:MAX_MISSING_SHOWN])
    extra = len(missing) - MAX_MISSING_SHOWN
    more = f" and {extra} more" if extra > 0 else ""
    raise FileNotFoundError(f"{len(missing)} of {len(entries)} videos listed in {label_file} are "
                            f"missing: {shown}{more}")
  return entries
