"""Validation of a whole config, run once at a program's entry, and the checks the library shares.

`validate(config)` resolves the schedule's step counts (`resolve_schedule`) and raises ValueError
naming the first inconsistent field. It imports nothing beyond the config package: the names it
checks against are `choices`, and the checks that the library also runs on its own inputs (a
sampling section, a perturbation, a loader, a worker count, a TFDS section) live here, called from
both sides.
"""

import os
from collections.abc import Mapping
from typing import Any

import ml_collections

from vqa_jax.config import choices
from vqa_jax.config import config_base


def schedule_steps(train_cfg: ml_collections.ConfigDict) -> tuple[int, int]:
  """(warmup W, cosine length M) of the warmup+cosine schedule; the rule that follows train.steps.

  A value set explicitly (>= 0) is kept. `cosine_steps` = -1 gives M = train.steps; `warmup_steps`
  = -1 gives W = round(train.warmup_fraction x train.steps). So `--config.train.steps=N` rescales
  a config that leaves them at -1.
  """
  warmup, cosine = int(train_cfg.warmup_steps), int(train_cfg.cosine_steps)
  if warmup == choices.FOLLOW_STEPS:
    warmup = round(train_cfg.warmup_fraction * train_cfg.steps)
  return warmup, int(train_cfg.steps) if cosine == choices.FOLLOW_STEPS else cosine


def resolve_schedule(config: ml_collections.ConfigDict) -> None:
  """Writes the step counts of train.warmup_steps / cosine_steps left at -1 (`schedule_steps`)."""
  warmup, cosine = schedule_steps(config.train)
  config.train.warmup_steps, config.train.cosine_steps = warmup, cosine


def family_name(model_cfg: ml_collections.ConfigDict) -> str:
  """The configured model family (`model.name`), checked against choices.FAMILIES."""
  name = model_cfg.name
  if name not in choices.FAMILIES:
    raise ValueError(f"model.name must be one of {choices.FAMILIES}, got {name!r}")
  return name


def radius_field(kind: str) -> str | None:
  """The perturb field holding the radius of `kind`: 'gamma' (relative), 'rho' (absolute), None."""
  if kind in choices.RELATIVE_KINDS:
    return "gamma"
  return "rho" if kind in choices.PERTURBATION_KINDS and kind != "none" else None


def check_perturbation(kind: str, radius: float, steps: int, every_k: int,
                       combine: float) -> None:
  """Raises ValueError unless these perturbation settings fit together (perturb_config.PerturbConfig)."""
  if kind not in choices.PERTURBATION_KINDS:
    raise ValueError(f"perturbation kind {kind!r} not in {choices.PERTURBATION_KINDS}")
  if not radius >= 0:
    raise ValueError(f"perturbation radius must be >= 0, got {radius}")
  for name, value in (("steps", steps), ("every_k", every_k)):
    if value < 1:
      raise ValueError(f"perturbation {name} must be >= 1, got {value}")
  if not 0 <= combine <= 1:
    raise ValueError(f"perturbation combine must be in [0, 1], got {combine}")
  if kind == "rwp" and steps > 1:
    raise ValueError("perturbation steps > 1 needs a gradient direction; rwp has none")
  if combine and every_k > 1:
    raise ValueError("perturbation combine > 0 needs the clean gradient of every step; "
                     "every_k > 1 skips it between recomputations")


def check_perturb_section(perturb_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError (prefixed 'perturb: ') unless the `perturb` section is consistent."""
  kind = perturb_cfg.kind
  if kind not in choices.PERTURBATION_KINDS:
    raise ValueError(f"perturb.kind must be one of {choices.PERTURBATION_KINDS}, got {kind!r}")
  field = radius_field(kind)
  precision = perturb_cfg.get("precision", choices.AUTO_PRECISION)
  allowed = (choices.AUTO_PRECISION,) + choices.PERTURB_PRECISIONS
  if precision not in allowed:
    raise ValueError(f"perturb.precision must be one of {allowed}, got {precision!r}")
  try:
    check_perturbation(kind, float(perturb_cfg[field]) if field else 0.0, int(perturb_cfg.steps),
                       int(perturb_cfg.every_k), float(perturb_cfg.combine))
  except ValueError as e:
    raise ValueError(f"perturb: {e}") from e


def check_frames_1fps(sampling: Mapping[str, Any]) -> None:
  """Raises ValueError unless short_side >= crop > 0 ('frames_1fps', data/sampling/frames_1fps)."""
  sampling = config_base.sampling_fields(sampling)
  short_side, crop = sampling["short_side"], sampling["crop"]
  if not 0 < crop <= short_side:
    raise ValueError(f"sampling.method={choices.FRAMES_1FPS!r} needs 0 < sampling.crop <= "
                     f"sampling.short_side, got crop={crop}, short_side={short_side}")


def check_sampling(sampling: Mapping[str, Any]) -> None:
  """Raises ValueError naming the first inconsistent `sampling` field (section or plain dict)."""
  sampling = config_base.sampling_fields(sampling)
  method = sampling["method"]
  if method not in choices.SAMPLING_METHODS:
    raise ValueError(f"sampling.method must be one of {choices.SAMPLING_METHODS}, got {method!r}")
  eval_offsets = sampling["eval_offsets"]
  if eval_offsets not in choices.EVAL_OFFSETS:
    raise ValueError(f"sampling.eval_offsets must be one of {choices.EVAL_OFFSETS}, "
                     f"got {eval_offsets!r}")
  clip_len = sampling["clip_len"]
  for name in ("clip_len", "frame_interval", "grid", "patch"):
    if sampling[name] <= 0:
      raise ValueError(f"sampling.{name} must be positive, got {sampling[name]}")
  aligned = sampling["aligned"]
  if aligned < 0 or (aligned and clip_len % aligned):
    raise ValueError(f"sampling.aligned={aligned} must be 0 (the whole clip) or divide "
                     f"clip_len={clip_len}")
  t_frag = sampling["t_frag"]
  if method == "fragments_t" and (t_frag <= 0 or clip_len % t_frag):
    raise ValueError(f"sampling.t_frag={t_frag} must be positive and divide clip_len={clip_len}")
  if method == "sama":
    if clip_len % 2:
      raise ValueError(f"sampling.clip_len={clip_len} must be even for SAMA (scales per frame pair)")
    if sampling["sama_mask"] not in choices.SAMA_MASKS:
      raise ValueError(f"sampling.sama_mask must be one of {choices.SAMA_MASKS}, "
                       f"got {sampling['sama_mask']!r}")
  if method == choices.FRAMES_1FPS:
    check_frames_1fps(sampling)
  if method == "sama_iqa" and clip_len != 1:
    raise ValueError(f"sampling.method='sama_iqa' samples single images: clip_len must be 1, "
                     f"got {clip_len}")


def check_loader(loader: str) -> None:
  """Raises ValueError unless `loader` is one of choices.LOADERS."""
  if loader not in choices.LOADERS:
    raise ValueError(f"data.loader must be one of {choices.LOADERS}, got {loader!r}")


def check_decoder(data: Mapping[str, Any], sampling: Mapping[str, Any]) -> None:
  """Raises ValueError unless data.decoder, nvdec_share and nvdec_threads fit together.

  NVDEC decodes the fragment samplers' clips without augmentation; a config that asks it for
  anything else fails here, naming the field.
  """
  decoder = data.get("decoder", "opencv")
  if decoder not in choices.DECODERS:
    raise ValueError(f"data.decoder must be one of {choices.DECODERS}, got {decoder!r}")
  if decoder == "opencv":
    return
  share, threads = data.get("nvdec_share", 0.6), data.get("nvdec_threads", 8)
  if decoder == "hybrid" and not 0.0 < share < 1.0:
    raise ValueError(f"data.nvdec_share must be in (0, 1) with data.decoder='hybrid', got {share}")
  if threads < 1:
    raise ValueError(f"data.nvdec_threads must be positive, got {threads}")
  method = config_base.sampling_fields(sampling)["method"]
  if method not in choices.NVDEC_METHODS:
    raise ValueError(f"data.decoder={decoder!r} takes sampling.method in {choices.NVDEC_METHODS}, "
                     f"got {method!r}")
  augment = data.get("augment", "none")
  if augment != "none":
    raise ValueError(f"data.decoder={decoder!r} takes data.augment='none', got {augment!r}")


def check_workers(workers: int) -> None:
  """Raises ValueError unless `data.workers` is -1 (the host's cores), 0 or positive."""
  if workers < -1:
    raise ValueError(f"data.workers must be -1 (the host's cores), 0 or positive, got {workers}")


def check_tfds(tfds_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless data.tfds names a builder and an existing manual_dir."""
  if not tfds_cfg.name or not tfds_cfg.manual_dir:
    raise ValueError("data.source='tfds' needs data.tfds.name (a builder) and data.tfds.manual_dir")
  if not os.path.isdir(tfds_cfg.manual_dir):
    raise ValueError(f"data.tfds.manual_dir {tfds_cfg.manual_dir!r} is not a folder")


def validate(config: ml_collections.ConfigDict) -> None:
  """Resolves the schedule's step counts, then raises ValueError naming the first inconsistent field."""
  resolve_schedule(config)
  data = config.data
  if data.source not in choices.SOURCES:
    raise ValueError(f"data.source must be one of {choices.SOURCES}, got {data.source!r}")
  if data.source == "synthetic_images" and "synthetic_images" not in data:
    raise ValueError("data.source='synthetic_images' needs a data.synthetic_images section "
                     "(specs.ImageSpec fields)")
  if data.source == "tfds":
    check_tfds(data.tfds)
  if data.on_bad_video not in choices.BAD_VIDEO_POLICIES:
    raise ValueError(f"data.on_bad_video must be 'error' or 'skip', got {data.on_bad_video!r}")
  check_loader(data.loader)
  check_workers(data.workers)
  check_decoder(data, config.sampling)
  if data.augment not in choices.AUGMENT_POLICIES:
    raise ValueError(f"data.augment must be one of {choices.AUGMENT_POLICIES}, "
                     f"got {data.augment!r}")
  check_sampling(config.sampling)
  check_perturb_section(config.perturb)
  matmul = config.model.get("matmul_precision", "default")
  if matmul not in choices.MATMUL_PRECISIONS:
    raise ValueError(f"model.matmul_precision must be one of {choices.MATMUL_PRECISIONS}, "
                     f"got {matmul!r}")
  if not set(config.eval.models) <= set(choices.EVAL_MODELS):
    raise ValueError(f"eval.models must be a subset of {choices.EVAL_MODELS}, "
                     f"got {config.eval.models}")
  validate_selection(config)
  check_init(config.init)
  for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
    if config.train[name] <= 0:
      raise ValueError(f"train.{name} must be positive, got {config.train[name]}")
  if config.train.batch_size < 2:
    raise ValueError("train.batch_size must be >= 2: the PLCC and rank losses compare videos")
  validate_optimizer(config.train)
  if config.train.loss not in choices.LOSSES:
    raise ValueError(f"train.loss must be one of {choices.LOSSES}, got {config.train.loss!r}")
  validate_model_inputs(config)


def check_init(init_cfg: ml_collections.ConfigDict) -> None:
  """init.pretrained names a registered model and is not given together with init.checkpoint."""
  name = init_cfg.get("pretrained", "")
  if not name:
    return
  if init_cfg.checkpoint:
    raise ValueError(f"give init.checkpoint or init.pretrained, not both (got "
                     f"{init_cfg.checkpoint!r} and {name!r})")
  from vqa_jax.pretrained import registry  # pylint: disable=g-import-not-at-top  (no heavy imports)
  if name not in registry.ENTRIES:
    raise ValueError(f"init.pretrained={name!r} is not a registered model; choose from "
                     f"{registry.names()} (vqa-jax models)")


def validate_optimizer(train_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless train.optimizer / train.schedule name known ones, with their fields."""
  if train_cfg.optimizer not in choices.OPTIMIZERS:
    raise ValueError(f"train.optimizer must be one of {choices.OPTIMIZERS}, got "
                     f"{train_cfg.optimizer!r}")
  schedule = train_cfg.schedule
  if schedule not in choices.SCHEDULES:
    raise ValueError(f"train.schedule must be one of {choices.SCHEDULES}, got {schedule!r}")
  if schedule == "step" and not (train_cfg.lr_step_every > 0 and train_cfg.lr_step_gamma > 0):
    raise ValueError(f"train.schedule='step' needs train.lr_step_every > 0 and lr_step_gamma > 0, "
                     f"got {train_cfg.lr_step_every} and {train_cfg.lr_step_gamma}")


def validate_model_inputs(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless the model family and the sampler fit together."""
  s = config.sampling
  frames = s.method == choices.FRAMES_1FPS
  if family_name(config.model) == "simple_vqa":
    if not frames:
      raise ValueError(f"model.name='simple_vqa' takes whole frames: sampling.method must be "
                       f"{choices.FRAMES_1FPS!r}, got {s.method!r}")
    if not config.data.motion_dir:
      raise ValueError("model.name='simple_vqa' needs data.motion_dir, the motion features of "
                       "`python -m vqa_jax.simple_vqa_features --out=DIR`")
    return
  if frames:
    raise ValueError(f"sampling.method={choices.FRAMES_1FPS!r} feeds whole frames to SimpleVQA; "
                     "set model.name='simple_vqa'")
  if s.clip_len % config.model.patch_size[0]:
    raise ValueError(f"sampling.clip_len {s.clip_len} is not a multiple of the temporal patch "
                     f"size {config.model.patch_size[0]}")
  if (s.grid * s.patch) % config.model.patch_size[1]:
    raise ValueError(f"fragment size {s.grid * s.patch} is not a multiple of the spatial patch size")


def validate_selection(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless the validation / model-selection / fine-tuning fields agree."""
  if config.data.val_split and config.eval.select_model not in config.eval.models:
    raise ValueError(f"eval.select_model {config.eval.select_model!r} is not in eval.models "
                     f"{config.eval.models}")
  if not 0 <= config.data.val_fraction < 1:
    raise ValueError(f"data.val_fraction must be in [0, 1), got {config.data.val_fraction}")
  if config.data.val_fraction and not config.data.val_split:
    raise ValueError("data.val_fraction > 0 needs data.val_split, the held-out split's name")
  if config.data.val_split and config.data.val_split in config.data.eval_splits:
    raise ValueError(f"data.val_split {config.data.val_split!r} is also an eval split: model "
                     "selection must not look at a test set")
  if config.data.val_split and config.data.val_split == config.data.train_split:
    raise ValueError("data.val_split must differ from data.train_split (use data.val_fraction to "
                     "hold part of the training split out)")
  if config.train.eval_every < 0 or config.train.freeze_backbone_steps < 0:
    raise ValueError("train.eval_every and train.freeze_backbone_steps must be >= 0")
  if config.finetune.epochs and not 0 <= config.finetune.probe_epochs <= config.finetune.epochs:
    raise ValueError(f"finetune.probe_epochs must be in [0, finetune.epochs], got "
                     f"{config.finetune.probe_epochs}")
  if not 0 < config.finetune.train_fraction < 1:
    raise ValueError(f"finetune.train_fraction must be in (0, 1), got "
                     f"{config.finetune.train_fraction}")
