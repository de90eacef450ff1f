"""data.source = 'tfds': the splits of one of vqa_jax's TFDS builders (data/tfds_builders).

  --config.data.source=tfds --config.data.tfds.name=lsvq --config.data.tfds.manual_dir=/data/LSVQ

The builder is prepared once from `data.tfds.manual_dir` (nothing is downloaded) into
`data.tfds.data_dir` (default `<cache>/tfds`), then each of its examples (absolute video path,
MOS) becomes an Entry. `data.tfds.splits` maps the run's split names to the builder's
(e.g. {'train': 'train', 'test': 'test', 'cross': 'test_1080p'}); empty keeps the builder's names.
TensorFlow (tensorflow_datasets) is imported only here, only for this source.
"""

from __future__ import annotations

import os

import ml_collections

from vqa_jax.data import labels


def tfds_config() -> ml_collections.ConfigDict:
  """The data.tfds section: builder name, manual_dir, data_dir and the split mapping."""
  c = ml_collections.ConfigDict()
  c.name = ""  # a builder of data/tfds_builders: konvid_1k, live_vqc, youtube_ugc, lsvq, koniq_10k
  c.manual_dir = ""  # the dataset's label files and videos, laid out as the builder documents
  c.data_dir = ""  # where TFDS writes the prepared dataset; '' -> <data cache>/tfds
  c.splits = ml_collections.ConfigDict()  # run split -> builder split; empty: the builder's own
  return c


def builder_names() -> tuple[str, ...]:
  """The names data.tfds.name accepts."""
  from vqa_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top  (TensorFlow)
  return tuple(b.name for b in tfds_builders.BUILDERS)


def check_config(tfds_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless data.tfds names a builder and an existing manual_dir."""
  if not tfds_cfg.name or not tfds_cfg.manual_dir:
    raise ValueError("data.source='tfds' needs data.tfds.name (a builder) and data.tfds.manual_dir")
  if not os.path.isdir(tfds_cfg.manual_dir):
    raise ValueError(f"data.tfds.manual_dir {tfds_cfg.manual_dir!r} is not a folder")


def load_splits(tfds_cfg: ml_collections.ConfigDict, default_data_dir: str
                ) -> dict[str, list[labels.Entry]]:
  """{run split: [Entry]} of the prepared builder (prepared from manual_dir on first use)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from vqa_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top
  check_config(tfds_cfg)
  by_name = {b.name: b for b in tfds_builders.BUILDERS}
  if tfds_cfg.name not in by_name:
    raise ValueError(f"data.tfds.name must be one of {sorted(by_name)}, got {tfds_cfg.name!r}")
  builder = by_name[tfds_cfg.name](data_dir=tfds_cfg.data_dir or default_data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=tfds_cfg.manual_dir))
  mapping = dict(tfds_cfg.splits) or {name: name for name in builder.info.splits}
  missing = sorted(set(mapping.values()) - set(builder.info.splits))
  if missing:
    raise ValueError(f"data.tfds.splits: {tfds_cfg.name} has no split {missing} "
                     f"(has {sorted(builder.info.splits)})")
  return {ours: [labels.Entry(path=ex["path"].decode(), mos=float(ex["mos"]))
                 for ex in tfds.as_numpy(builder.as_dataset(split=theirs))]
          for ours, theirs in mapping.items()}
