"""The Python API: `Scorer` (score videos from a run or converted weights) and `train`.

  from vqa_jax import Scorer
  scorer = Scorer.load("runs/demo")          # a trainer workdir (or best/, a step) or convert_weights dir
  scorer = Scorer.from_pretrained("fast-vqa-b")  # a named model (vqa-jax models), fetched and cached
  result = scorer("video.mp4")
  result.score, result.mos, result.score_01, result.quality_map.shape

`Scorer.load` reads the config stored with the checkpoint (`run_config.stored_config`) unless one
is given; a `Score` holds what `python -m vqa_jax.score` prints for the same video (the same
numbers) plus the test clips and the local quality map.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from vqa_jax.scoring import calibration as calibration_lib
from vqa_jax.config import config_files
from vqa_jax import families
from vqa_jax.config import run_config
from vqa_jax.scoring import score as score_lib

ConfigLike = ml_collections.ConfigDict | str | None


def as_config(config: ConfigLike, checkpoint: str | None = None) -> ml_collections.ConfigDict:
  """A ConfigDict from a ConfigDict, a shipped config's name or a file path, or (None) the config
  stored with `checkpoint`."""
  if isinstance(config, str):
    return config_files.load(config)
  if config is None:
    if checkpoint is None:
      raise ValueError("give a config (a ConfigDict, a shipped config's name or a file path)")
    return run_config.stored_config(checkpoint)
  return config


@dataclasses.dataclass(frozen=True)
class Score:
  """One video's result: raw `score`, calibrated `mos` / `score_01` (None if uncalibrated), the
  test `clips` (uint8 (clips, T, S, S, 3)) and the local `quality_map` (clips, T', H', W')."""

  path: str
  score: float
  mos: float | None
  score_01: float | None
  clips: np.ndarray
  quality_map: np.ndarray


class Scorer:
  """`scorer(video_path) -> Score` for a FAST-VQA-family checkpoint under its config's test protocol."""

  def __init__(self, config: ml_collections.ConfigDict, params, calibration=None,
               clip_chunk: int | None = None):
    if families.family_name(config.model) != "fast_vqa":
      raise ValueError("Scorer takes FAST-VQA-family models (a quality map); score SimpleVQA with "
                       "`vqa-jax score`")
    self.config = config
    self.calibration = calibration
    self._map_fn = score_lib.make_map_fn(config, params, clip_chunk)

  @classmethod
  def load(cls, path: str, config: ConfigLike = None, use_ema: bool = True,
           clip_chunk: int | None = None) -> "Scorer":
    """The scorer of a trainer workdir (EMA params unless use_ema=False) or convert_weights dir,
    with its stored config (or `config`) and its calibration."""
    config = as_config(config, path)
    with score_lib.reading_checkpoint(path):
      calibration, _ = calibration_lib.for_checkpoint(config, path, use_ema)
      params = score_lib.load_checkpoint(config, path, use_ema)
    return cls(config, params, calibration, clip_chunk)

  @classmethod
  def from_pretrained(cls, name: str, offline: bool | None = None,
                      clip_chunk: int | None = None) -> "Scorer":
    """The scorer of the named model `name` (`vqa_jax.pretrained.registry`): its upstream file
    fetched (mirror: VQA_JAX_MODELS_MIRROR), hash-checked and converted once into the cache
    ($VQA_JAX_CACHE/models/<name>/), with the upstream calibration. `offline` (default:
    VQA_JAX_OFFLINE) never downloads."""
    from vqa_jax.pretrained import cache  # pylint: disable=g-import-not-at-top
    return cls.load(cache.ensure_scorer(name, offline=offline), clip_chunk=clip_chunk)

  def __call__(self, video_path: str) -> Score:
    """Scores one video (or image) file; raises on unreadable input."""
    clips = score_lib.sample_test_clips(self.config, video_path)
    quality_map = self._map_fn(clips)
    values = score_lib.calibrated(score_lib.map_score(quality_map), self.calibration)
    return Score(path=video_path, clips=clips, quality_map=quality_map, **values)


def train(config: ConfigLike, workdir: str, allow_config_change: bool = False):
  """Trains (or resumes) a run in `workdir`; returns its final results (`report.Results`)."""
  from vqa_jax.training import trainer  # pylint: disable=g-import-not-at-top  (TensorFlow with tf_data)
  return trainer.train(as_config(config, workdir), workdir, allow_config_change)
