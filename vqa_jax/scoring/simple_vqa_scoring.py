"""Scoring videos with a SimpleVQA checkpoint: frames at 1 fps plus motion features, on the fly.

`vqa_jax.score` calls `make_scorer` when `config.model.name` is 'simple_vqa'. A video's score is
the model's mean per-frame score in eval mode (running BatchNorm statistics) on the centre-cropped
test frames of `config.sampling` (`frames_1fps`). Its motion features come from
`config.data.motion_dir` when that folder's index lists the video (what training read), and are
otherwise computed from the video by the SlowFast of `config.motion` (`motion.weights`: a
`convert_weights --format=slowfast_r50` output or a pytorchvideo file), exactly as
`python -m vqa_jax.simple_vqa_features` would write them.
"""

from __future__ import annotations

import os
from typing import Callable

import jax
import ml_collections
import numpy as np

from vqa_jax import families
from vqa_jax.convert import pretrained
from vqa_jax.data import motion as motion_lib
from vqa_jax.data import motion_chunks
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data import video_io
from vqa_jax.scoring import motion_features


def load_variables(config: ml_collections.ConfigDict, checkpoint: str,
                   use_ema: bool = True) -> dict:
  """The variables of `checkpoint` (`pretrained.load_variables`), checked against the config."""
  return pretrained.load_variables(checkpoint, like=families.abstract_variables(config.model),
                                   use_ema=use_ema)


class MotionSource:
  """A video's (clip_len, motion_dim) features: from `data.motion_dir`, else computed."""

  def __init__(self, config: ml_collections.ConfigDict):
    self._config = config
    self._num_frames = int(config.sampling.clip_len)
    motion_dir = config.data.motion_dir
    index_file = os.path.join(motion_dir, motion_lib.INDEX_FILE) if motion_dir else ""
    self._saved = (motion_lib.MotionFeatures(motion_dir, self._num_frames,
                                             int(config.model.motion_dim))
                   if index_file and os.path.isfile(index_file) else None)
    self._extract = None  # built on the first video whose features are not saved

  def __call__(self, path: str) -> np.ndarray:
    """float32 (clip_len, motion_dim) features of the video at `path`."""
    if self._saved is not None and self._saved.feature_file(path) is not None:
      return self._saved.load(path)
    if self._extract is None:
      self._extract = motion_features.make_extractor(self._config.motion)
    features = self._extract(motion_chunks.video_chunks(path, self._config.motion))
    if features.shape[0] < self._num_frames:
      raise video_io.VideoDecodeError(path, f"{features.shape[0]} one-second motion chunks, "
                                      f"need {self._num_frames} (motion.min_chunks)")
    return features[:self._num_frames]


def make_scorer(config: ml_collections.ConfigDict,
                variables: dict) -> Callable[[str], float]:
  """Builds `score(path) -> float` for a SimpleVQA `config` with loaded `variables`."""
  family = families.build(config)
  predict = jax.jit(family.predict_fn)
  motion_of = MotionSource(config)
  rng = clip_sampler.eval_rng(config.sampling, 0)

  def score(path: str) -> float:
    frames = clip_sampler.sample_clips(path, config.sampling, config.sampling.num_clips_eval,
                                       rng=rng)
    motion = motion_of(path)
    return float(np.asarray(predict(variables, frames[None], motion[None]))[0])

  return score
