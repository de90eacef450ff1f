"""Per-distortion SRCC of a test set, from the synthetic generator's metadata.

A weight-space regulariser can act on a shift of content and camera motion, not on a distortion
that training never showed. The generator records each video's distortions (name -> strength), so
the zero-shot SRCC can be read per distortion: over the videos that carry it (`MIN_VIDEOS` or
more), and over the pristine ones together with them. Real label files have no such metadata and
get no breakdown.
"""

import json
import os
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import cache_location
from vqa_jax.data.synthetic import dataset

MIN_VIDEOS = 4  # fewer videos with a distortion: no SRCC for it


def per_distortion_srcc(predictions: Sequence[float], labels: Sequence[float],
                        distortions: Sequence[Mapping[str, float]]) -> dict[str, dict]:
  """{distortion: {'n', 'srcc'}} over the videos carrying it ('srcc' nan below MIN_VIDEOS or
  for a constant column)."""
  predictions = np.asarray(predictions, np.float64)
  labels = np.asarray(labels, np.float64)
  names = sorted({name for d in distortions for name in d})
  out = {}
  for name in names:
    chosen = np.array([name in d for d in distortions])
    n = int(chosen.sum())
    srcc = float("nan")
    if n >= MIN_VIDEOS and np.ptp(labels[chosen]) > 0 and np.ptp(predictions[chosen]) > 0:
      srcc = float(stats.spearmanr(predictions[chosen], labels[chosen]).statistic)
    out[name] = {"n": n, "srcc": srcc}
  return out


def distortions_of(paths: Sequence[str], metadata: Mapping[str, Mapping]) -> list[dict]:
  """The distortions of each path from {absolute path: metadata line}; a path missing is an error."""
  paths = [os.path.normpath(p) for p in paths]
  missing = [p for p in paths if p not in metadata]
  if missing:
    raise KeyError(f"{len(missing)} videos have no generator metadata, e.g. {missing[0]}")
  return [dict(metadata[p]["distortions"]) for p in paths]


def load_metadata(data_cfg) -> dict[str, dict]:
  """{absolute video path: metadata line} of the configured synthetic dataset ({} otherwise)."""
  if data_cfg.source != "synthetic":
    return {}
  built = dataset.ensure_in_cache(cache_location.cache_dir(data_cfg),
                                  SyntheticSpec.from_config(data_cfg.synthetic))
  with open(built.metadata_file, encoding="utf-8") as f:
    lines = [json.loads(line) for line in f if line.strip()]
  return {os.path.normpath(os.path.join(built.root, m["relpath"])): m for m in lines}


def breakdown(predict, params, sets: Mapping, metadata: Mapping[str, Mapping]) -> dict[str, dict]:
  """{set name: per_distortion_srcc} of every fixed set but the train subset ({} without
  metadata). `predict(params, fixed_set)` gives the set's per-video predictions."""
  if not metadata:
    return {}
  return {name: per_distortion_srcc(predict(params, data), data.label,
                                    distortions_of(data.paths, metadata))
          for name, data in sets.items() if name != "train"}
