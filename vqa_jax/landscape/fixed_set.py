"""Fixed evaluation clips: sampled ONCE (centred, deterministic offsets) and kept as arrays.

A loss landscape must compare every perturbed point on the same inputs, so the clips are decoded and
cut a single time (`sampling.sample_clips` with rng=None, no TensorFlow) and the arrays are reused.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from vqa_jax.data import sources
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data.labels import Entry


class FixedSet(NamedTuple):
  """Clips and labels of a fixed subset: video uint8 (N, clips, T, S, S, 3), label float32 (N,)."""

  video: np.ndarray
  label: np.ndarray
  paths: tuple[str, ...]


def spread_indices(num_entries: int, num_videos: int) -> np.ndarray:
  """`num_videos` indices spread evenly over [0, num_entries) (all of them if there are fewer)."""
  if num_entries < 1:
    raise ValueError("no entries to sample a fixed set from")
  if num_videos <= 0 or num_videos >= num_entries:
    return np.arange(num_entries)
  return np.unique(np.round(np.linspace(0, num_entries - 1, num_videos)).astype(np.int64))


def sample_fixed_set(entries: list[Entry], sampling: Mapping[str, Any], num_videos: int,
                     num_clips: int) -> FixedSet:
  """Decodes `num_videos` evenly spread entries (<= 0: all) into a FixedSet of `num_clips` clips."""
  chosen = [entries[i] for i in spread_indices(len(entries), num_videos)]
  videos = [clip_sampler.sample_clips(e.path, sampling, num_clips, rng=None) for e in chosen]
  return FixedSet(video=np.stack(videos), label=np.asarray([e.mos for e in chosen], np.float32),
                  paths=tuple(e.path for e in chosen))


def build_sets(config, names, num_videos: int, num_clips: int, loss_batch: int) -> dict:
  """Fixed clips of each named split, sized to a multiple of the loss batch."""
  splits = sources.load_splits(config.data)
  sets = {}
  for name in dict.fromkeys(names):
    if name not in splits:
      raise ValueError(f"split {name!r} is not in the config's data source (has {sorted(splits)})")
    size = len(splits[name]) if num_videos <= 0 else min(num_videos, len(splits[name]))
    size -= size % loss_batch
    if size < loss_batch:
      raise ValueError(f"split {name!r} has {len(splits[name])} videos, fewer than one loss batch "
                       f"of {loss_batch}")
    sets[name] = sample_fixed_set(splits[name], config.sampling, size, num_clips)
  return sets
