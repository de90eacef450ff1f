"""KonIQ-10k: 10,073 in-the-wild images (1024x768) with MOS (1-5) and MOS_zscore (about 0-100)."""

import os

import tensorflow_datasets as tfds

from vqa_jax.data import labels
from vqa_jax.data.tfds_builders import base

LABEL_FILE = "koniq10k_scores_and_distributions.csv"
IMAGE_DIR = "1024x768"


class Koniq10k(base.VqaLabelFileBuilder):
  """KonIQ-10k image paths and scores: one split 'full' (the csv's rows, in order).

  The `mos` feature holds the csv's MOS_zscore column (SAMA's IQA label); the builder config
  `koniq_10k/mos` stores the 1-5 MOS column instead. Images are single frames for the IQA
  variant (`video_io` reads them as one-frame videos).
  """

  name = "koniq_10k"
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="mos_zscore", description="MOS_zscore (about 0-100)"),
      tfds.core.BuilderConfig(name="mos", description="MOS (1-5)"),
  ]
  LABEL_FILES = {"full": LABEL_FILE}
  HOMEPAGE = "http://database.mmsp-kn.de/koniq-10k-database.html"
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Place in the manual folder (the release's koniq10k_scores_and_distributions.zip and
  koniq10k_1024x768.zip, unzipped):
    {LABEL_FILE}   header image_name,c1,...,c5,c_total,MOS,SD,MOS_zscore
    {IMAGE_DIR}/*.jpg                            the 10,073 images, e.g. {IMAGE_DIR}/826373.jpg
  """

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    """Reads the csv and checks that every image exists before generating."""
    root = os.path.abspath(os.fspath(dl_manager.manual_dir))
    entries = read_images(root, self.builder_config.name)
    return {"full": self._generate_examples(root, entries)}


def read_images(root: str, score: str = labels.KONIQ_DEFAULT_SCORE) -> list[labels.Entry]:
  """Entries (image path, `score` column) of the KonIQ-10k manual folder `root`.

  FileNotFoundError names the missing csv, image folder or images.
  """
  label_file = os.path.join(root, LABEL_FILE)
  image_root = os.path.join(root, IMAGE_DIR)
  for path, what in ((label_file, "label file"), (image_root, "image folder")):
    if not os.path.exists(path):
      raise FileNotFoundError(f"KonIQ-10k {what} {path} not found (see "
                              "Koniq10k.MANUAL_DOWNLOAD_INSTRUCTIONS).")
  entries = labels.read_labels(label_file, image_root, score)
  missing = labels.missing_videos(entries)
  if missing:
    shown = ", ".join(missing[:base.MAX_MISSING_SHOWN])
    raise FileNotFoundError(f"{len(missing)} of {len(entries)} images listed in {label_file} are "
                            f"missing, e.g. {shown}")
  return entries
