"""Resolves the configured data source into labelled splits: split name -> list of Entry."""

import os

from absl import logging
import ml_collections

from vqa_jax.config.choices import SOURCES
from vqa_jax.config.specs import ImageSpec
from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import cache_location
from vqa_jax.data import labels
from vqa_jax.data import tfds_source
from vqa_jax.data.synthetic import dataset as synthetic_videos
from vqa_jax.data.synthetic import images as synthetic_images


def label_file_splits(label_files: ml_collections.ConfigDict) -> dict[str, list[labels.Entry]]:
  """Reads each "LABEL_FILE:DATA_ROOT" value into entries.

  LABEL_FILE is a FAST-VQA label file or an official LSVQ csv; 'labels_train_test.csv#train'
  ('#test') keeps the csv rows whose is_test is false (true).
  Either path may contain colons (`labels.split_source`). Videos listed in more than one split
  are a warning listing them (`warn_overlaps`).
  """
  splits = {}
  for name, spec in label_files.items():
    try:
      label_spec, root = labels.split_source(str(spec))
    except ValueError as e:
      raise ValueError(f"data.label_files.{name}: {e}") from None
    label_file, subset = labels.parse_spec(label_spec)
    splits[name] = labels.read_labels(label_file, root, subset)
  warn_overlaps(splits)
  return splits


def warn_overlaps(splits: dict[str, list[labels.Entry]], max_listed: int = 20) -> None:
  """Logs a warning per pair of splits sharing videos, listing (up to `max_listed` of) them."""
  for (a, b), videos in labels.overlapping_videos(splits).items():
    logging.warning("%d videos are in both split %r and split %r (first %d listed):\n  %s",
                    len(videos), a, b, min(len(videos), max_listed),
                    "\n  ".join(videos[:max_listed]))


def load_splits(data_cfg: ml_collections.ConfigDict) -> dict[str, list[labels.Entry]]:
  """All labelled splits of the configured source (generating a synthetic set when needed)."""
  if data_cfg.source == "synthetic":
    dataset = synthetic_videos.ensure_in_cache(cache_location.cache_dir(data_cfg),
                                               SyntheticSpec.from_config(data_cfg.synthetic))
    return {name: labels.read_labels(path, dataset.root)
            for name, path in dataset.label_files.items()}
  if data_cfg.source == "synthetic_images":
    spec = ImageSpec(**data_cfg.synthetic_images)
    root = synthetic_images.ensure_dataset(cache_location.cache_dir(data_cfg), spec)
    return label_file_splits(ml_collections.ConfigDict(synthetic_images.label_file_specs(root)))
  if data_cfg.source == "tfds":
    return tfds_source.load_splits(data_cfg.tfds,
                                   os.path.join(cache_location.cache_dir(data_cfg), "tfds"))
  if data_cfg.source != "label_files":
    raise ValueError(f"data.source must be one of {SOURCES}, got {data_cfg.source!r}")
  return label_file_splits(data_cfg.label_files)
