"""data.source = 'tfds': the splits of one of vqa_jax's TFDS builders (data/tfds_builders).

  --config.data.source=tfds --config.data.tfds.name=lsvq --config.data.tfds.manual_dir=/data/LSVQ

The builder is prepared once from `data.tfds.manual_dir` (nothing is downloaded) into
`data.tfds.data_dir` (default `<cache>/tfds`), then each of its examples (absolute video path,
MOS) becomes an Entry. `data.tfds.splits` maps the run's split names to the builder's
(e.g. {'train': 'train', 'test': 'test', 'cross': 'test_1080p'}); empty keeps the builder's names.
The section's defaults are `config.sections.tfds_config`, its check `config.validation.check_tfds`.
TensorFlow (tensorflow_datasets) is imported only here, only for this source.
"""

from __future__ import annotations

import ml_collections

from vqa_jax.config import validation
from vqa_jax.data import labels


def load_splits(tfds_cfg: ml_collections.ConfigDict, default_data_dir: str
                ) -> dict[str, list[labels.Entry]]:
  """{run split: [Entry]} of the prepared builder (prepared from manual_dir on first use)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from vqa_jax.data import tfds_builders  # pylint: disable=g-import-not-at-top
  validation.check_tfds(tfds_cfg)
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
