"""SimpleVQA's SlowFast motion features of a dataset: a (chunks, 2304) .npy per video (paper §6.3).

Every video of every split of `config.data` is cut into one-second chunks (`motion_chunks`),
normalised with mean 0.45 / std 0.225, and the slow pathway takes the linspace frames
(`slowfast.slow_indices`). Output: `<out>/<path relative to the videos' common folder>.npy`,
float32 (chunks, 2304) = slow 2048 then fast 256 (the reference's concatenation order), and
`<out>/index.json` mapping each video path to its file. Existing files are kept (a rerun resumes).
`motion.weights`: the output directory of `python -m vqa_jax.convert_weights
--src=SLOWFAST_8x8_R50.pyth --dst=DIR` ({'params', 'batch_stats'}), or the pytorchvideo checkpoint
itself (.pyth/.pth, needs torch to read); '' runs with random weights (tests only; a warning says
so). The command line is `python -m vqa_jax.simple_vqa_features` (`vqa-jax features`).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Callable

from absl import logging
import jax
import ml_collections
import numpy as np

from vqa_jax.convert import convert_resnet
from vqa_jax.convert import pretrained
from vqa_jax.convert import state_dicts
from vqa_jax.data import motion
from vqa_jax.data import motion_chunks
from vqa_jax.data import sources
from vqa_jax.data import video_io
from vqa_jax.models import slowfast
from vqa_jax.runtime import progress

PyTree = Any
INDEX_FILE = motion.INDEX_FILE


def build_extractor(motion_cfg: ml_collections.ConfigDict) -> slowfast.SlowFast:
  """The SlowFast of `config.motion` (slowfast_r50 with the reference fields)."""
  return convert_resnet.slowfast_from_config(motion_cfg)


def load_extractor_variables(motion_cfg: ml_collections.ConfigDict,
                             model: slowfast.SlowFast) -> PyTree:
  """{'params', 'batch_stats'} from `motion_cfg.weights`; '' = random weights (tests only).

  `weights` is a `python -m vqa_jax.convert_weights` output directory (format slowfast_r50), or a
  pytorchvideo file (.pyth/.pth, read with torch; or its state_dict as .npz) converted here.
  """
  weights = str(motion_cfg.weights)
  if not weights:
    logging.warning("motion.weights is empty: SlowFast features from RANDOM weights (tests only)")
    clips = [np.zeros(c.shape, c.dtype) for c in slowfast.example_clips(model)]
    return jax.jit(model.init)(jax.random.key(0), *clips)
  if os.path.isdir(weights):
    return pretrained.load_variables(weights, like=convert_resnet.abstract_slowfast(model))
  try:
    params, stats = convert_resnet.convert_slowfast_r50_state_dict(
        state_dicts.read_state_dict(weights), model)
  except ValueError as e:
    raise ValueError(f"{weights}: {e}") from e
  return {"params": params, "batch_stats": stats}


def feature_file(video_path: str, root: str) -> str:
  """The .npy name of a video: its path relative to `root`, extension replaced by `.npy`."""
  return os.path.splitext(os.path.relpath(video_path, root))[0] + ".npy"


def _save_atomically(path: str, array: np.ndarray) -> None:
  """Writes `array` to `path` via a temporary file, so a killed run leaves no partial file."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.npy"
  np.save(tmp, array)
  os.replace(tmp, path)


def make_extractor(motion_cfg: ml_collections.ConfigDict) -> Callable[[np.ndarray], np.ndarray]:
  """A function: uint8 chunks (N, T, S, S, 3) -> float32 (N, D) features, in padded batches."""
  model = build_extractor(motion_cfg)
  variables = load_extractor_variables(motion_cfg, model)
  features_of = jax.jit(functools.partial(slowfast.chunk_features, model))
  batch = int(motion_cfg.batch_chunks)

  def extract(chunks: np.ndarray) -> np.ndarray:
    padded = np.concatenate([chunks, np.repeat(chunks[-1:], -len(chunks) % batch, axis=0)])
    features = [np.asarray(features_of(variables, padded[i:i + batch]))
                for i in range(0, len(padded), batch)]
    return np.concatenate(features)[:len(chunks)].astype(np.float32)

  return extract


def extract_features(config: ml_collections.ConfigDict, out_dir: str,
                     extractor: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, str]:
  """Writes the motion features of every video of `config.data`; returns the index written.

  The extractor (default `make_extractor(config.motion)`) is built only when a file is missing.
  """
  splits = sources.load_splits(config.data)
  paths = sorted({os.path.abspath(entry.path) for entries in splits.values() for entry in entries})
  if not paths:
    raise ValueError("config.data lists no videos")
  root = os.path.commonpath([os.path.dirname(p) for p in paths])
  index, skipped = {}, 0
  bar = progress.tqdm_bar(len(paths), "video")
  for path in paths:
    bar.update()
    name = feature_file(path, root)
    destination = os.path.join(out_dir, name)
    if not os.path.exists(destination):
      try:
        chunks = motion_chunks.video_chunks(path, config.motion)
      except video_io.VideoDecodeError as e:
        if config.data.on_bad_video != "skip":
          raise
        logging.warning("skipping %s", e)
        skipped += 1
        continue
      extractor = extractor or make_extractor(config.motion)
      _save_atomically(destination, extractor(chunks))
    index[path] = name
  bar.close()
  with open(os.path.join(out_dir, INDEX_FILE), "w", encoding="utf-8") as f:
    json.dump(index, f, indent=0, sort_keys=True)
  if skipped:
    logging.warning("%d videos skipped (bad input)", skipped)
  return index
