"""The full default configuration (every field a config file may override) and its validation.

Config files in `configs/` start from `base_config()` and change what they need; absl flags then
override single fields, e.g. `--config.train.steps=200`.
"""

import dataclasses

import ml_collections

from vqa_jax.data.synthetic import SyntheticSpec
from vqa_jax.models.model import fast_vqa_b_config
from vqa_jax.train_step import PERTURBATION_KINDS
from vqa_jax.train_step import PerturbConfig


def synthetic_config(spec: SyntheticSpec) -> ml_collections.ConfigDict:
  """A SyntheticSpec as a config section (so that each field can be overridden by a flag)."""
  return ml_collections.ConfigDict(dataclasses.asdict(spec))


def base_config() -> ml_collections.ConfigDict:
  """The FAST-VQA-B recipe on the synthetic dataset; configs shrink or redirect it."""
  c = ml_collections.ConfigDict()
  c.seed = 42

  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic"  # 'synthetic' or 'label_files'
  c.data.cache_dir = ""  # '' -> $VQA_JAX_CACHE or ~/.cache/vqa_jax
  # Every SyntheticSpec field (the demo preset); see vqa_jax/data/synthetic.py.
  c.data.synthetic = synthetic_config(SyntheticSpec.demo())
  # For source 'label_files': split name -> "LABEL_FILE:DATA_ROOT" (FAST-VQA label format).
  c.data.label_files = ml_collections.ConfigDict()
  c.data.train_split = "train"
  # 'error': a video that cannot be decoded stops the run, naming the file. 'skip': it is logged once
  # and counted; training substitutes the next decodable video, evaluation leaves it out.
  c.data.on_bad_video = "error"
  c.data.eval_splits = ("test", "cross")

  c.sampling = ml_collections.ConfigDict()
  c.sampling.clip_len = 32
  c.sampling.frame_interval = 2
  c.sampling.grid = 7
  c.sampling.patch = 32
  c.sampling.num_clips_train = 1
  c.sampling.num_clips_eval = 4

  c.model = fast_vqa_b_config()  # FAST-VQA-B: Video Swin-T with GRPB, VQA head

  c.train = ml_collections.ConfigDict()
  c.train.steps = 52620
  c.train.batch_size = 16
  c.train.learning_rate = 1e-3  # head; the backbone gets learning_rate * backbone_lr_mult
  c.train.backbone_lr_mult = 0.1
  c.train.weight_decay = 0.05
  c.train.warmup_steps = 4385
  c.train.cosine_steps = 52620  # M in the reference schedule (paper §7.3)
  c.train.ema_decay = 0.999
  c.train.rank_weight = 0.3
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.max_checkpoints = 2

  c.perturb = ml_collections.ConfigDict()
  c.perturb.kind = "awp"  # 'none' | 'awp' | 'rwp' | 'sam' | 'asam'
  c.perturb.gamma = 1e-4
  c.perturb.reuse_dropout_rng = False
  c.perturb.rho = 0.05  # absolute radius of 'sam' / 'asam' (gamma is awp/rwp's relative radius)
  c.perturb.steps = 1  # ascent steps of radius/steps, each projected back onto the feasible set
  c.perturb.every_k = 1  # recompute the perturbation every k steps, reuse the last one in between
  c.perturb.combine = 0.0  # update with (1 - combine) * perturbed grad + combine * clean grad

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 4
  c.eval.models = ("raw", "ema")
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first inconsistent field."""
  if config.data.source not in ("synthetic", "label_files"):
    raise ValueError(f"data.source must be 'synthetic' or 'label_files', got {config.data.source!r}")
  if config.data.on_bad_video not in ("error", "skip"):
    raise ValueError(f"data.on_bad_video must be 'error' or 'skip', got {config.data.on_bad_video!r}")
  if config.perturb.kind not in PERTURBATION_KINDS:
    raise ValueError(f"perturb.kind must be one of {PERTURBATION_KINDS}, got {config.perturb.kind!r}")
  try:
    PerturbConfig.from_config(config.perturb)
  except ValueError as e:
    raise ValueError(f"perturb: {e}") from e
  if not set(config.eval.models) <= {"raw", "ema"}:
    raise ValueError(f"eval.models must be a subset of ('raw', 'ema'), got {config.eval.models}")
  for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
    if config.train[name] <= 0:
      raise ValueError(f"train.{name} must be positive, got {config.train[name]}")
  if config.train.batch_size < 2:
    raise ValueError("train.batch_size must be >= 2: the PLCC and rank losses compare videos")
  s = config.sampling
  if s.clip_len % config.model.patch_size[0]:
    raise ValueError(f"sampling.clip_len {s.clip_len} is not a multiple of the temporal patch "
                     f"size {config.model.patch_size[0]}")
  if (s.grid * s.patch) % config.model.patch_size[1]:
    raise ValueError(f"fragment size {s.grid * s.patch} is not a multiple of the spatial patch size")
