"""The full default configuration (every field a config file may override) and its validation.

Config files in `configs/` start from `base_config()` and change what they need; absl flags then
override single fields, e.g. `--config.train.steps=200`.
"""

import dataclasses

import ml_collections

from vqa_jax import families
from vqa_jax.families import losses
from vqa_jax.training import optim
from vqa_jax.data import augment
from vqa_jax.data import elements
from vqa_jax.data import frames_1fps
from vqa_jax.data import loaders
from vqa_jax.data import sampling
from vqa_jax.data import sources
from vqa_jax.data import tfds_source
from vqa_jax.data.synthetic import SyntheticSpec
from vqa_jax.models.fast_vqa import fast_vqa_b_config
from vqa_jax.perturb import PERTURBATION_KINDS
from vqa_jax.perturb import PerturbConfig


def synthetic_config(spec: SyntheticSpec) -> ml_collections.ConfigDict:
  """A SyntheticSpec as a config section (so that each field can be overridden by a flag)."""
  return ml_collections.ConfigDict(dataclasses.asdict(spec))


def base_config() -> ml_collections.ConfigDict:
  """The FAST-VQA-B recipe on the synthetic dataset; configs shrink or redirect it."""
  c = ml_collections.ConfigDict()
  c.seed = 42

  c.data = ml_collections.ConfigDict()
  # 'synthetic' (videos), 'synthetic_images' (IQA; needs a data.synthetic_images section of
  # synthetic_images.ImageSpec fields, see configs/iqa_demo.py), 'label_files' or 'tfds'.
  c.data.source = "synthetic"
  c.data.cache_dir = ""  # '' -> $VQA_JAX_CACHE or ~/.cache/vqa_jax
  # Every SyntheticSpec field (the demo preset); see vqa_jax/data/synthetic.py.
  c.data.synthetic = synthetic_config(SyntheticSpec.demo())
  # For source 'label_files': split name -> "LABEL_FILE:DATA_ROOT" (FAST-VQA label format).
  c.data.label_files = ml_collections.ConfigDict()
  # For source 'tfds': a builder of data/tfds_builders read from its manual_dir (data/tfds_source.py).
  c.data.tfds = tfds_source.tfds_config()
  c.data.train_split = "train"
  # 'error': a video that cannot be decoded stops the run, naming the file. 'skip': it is logged once
  # and counted; training substitutes the next decodable video, evaluation leaves it out.
  c.data.on_bad_video = "error"
  # Input loader: 'tf_data' (tf.data + OpenCV, the default) or 'grain' (grain worker processes; no
  # TensorFlow anywhere, for hosts without it). Both yield bit-identical batches (data/elements.py).
  c.data.loader = "tf_data"
  # Decode workers (tf.data threads or grain processes), each single-threaded: -1 = the host's
  # cores, 0 = decode in the main process.
  c.data.workers = -1
  c.data.eval_splits = ("test", "cross")
  # Training-clip augmentation before fragment sampling: 'none' or 'autoaugment' (FAST-VQA-AuA,
  # paper §2: torchvision's ImageNet AutoAugment policy, one draw per clip; data/augment.py).
  c.data.augment = "none"
  # Model selection (trainer): '' = none. With val_fraction > 0, that fraction of the training split
  # (shuffled with `seed`) is held out under this name; otherwise it names an existing split, which
  # must not be one of eval_splits (selection never looks at a test set).
  c.data.val_split = ""
  c.data.val_fraction = 0.0
  # SimpleVQA (model.name 'simple_vqa'): the folder of precomputed SlowFast motion features
  # (`python -m vqa_jax.families.simple_vqa_features --out=DIR`: index.json + one .npy per video).
  c.data.motion_dir = ""

  c.sampling = ml_collections.ConfigDict()
  c.sampling.clip_len = 32
  c.sampling.frame_interval = 2
  c.sampling.grid = 7
  c.sampling.patch = 32
  c.sampling.num_clips_train = 1
  c.sampling.num_clips_eval = 4
  # 'fragments' (FAST-VQA), 'fragments_t' (FasterVQA's temporal segments) or 'sama' (data/sampling.py).
  c.sampling.method = "fragments"
  c.sampling.aligned = 0  # frames sharing patch positions; 0 = the whole clip (FAST-VQA's 32 = clip_len)
  c.sampling.t_frag = 1  # 'fragments_t': temporal segments per clip (FasterVQA: 8)
  c.sampling.sama_mask = "none"  # 'sama': 'none' (upstream default), 'patch' or 'window' masking
  # Evaluation offsets: 'centred' (deterministic, the default) or 'random' (the reference's stochastic
  # test protocol, drawn reproducibly from eval_seed and each video's index). Training is random.
  c.sampling.eval_offsets = "centred"
  c.sampling.eval_seed = 0
  # 'frames_1fps' (SimpleVQA, data/frames_1fps.py): clip_len frames at 1 fps, short side resized to
  # short_side, a crop x crop square per frame (random in training, centred in evaluation).
  c.sampling.short_side = 520
  c.sampling.crop = 448

  # FAST-VQA-B: Video Swin-T with GRPB, VQA head. Another family sets model.name (families.py),
  # e.g. 'simple_vqa' with models/simple_vqa.simple_vqa_config().
  c.model = fast_vqa_b_config()

  # SimpleVQA's L1 + rank loss (simple_vqa_loss.py); FAST-VQA's loss uses train.rank_weight.
  c.loss = ml_collections.ConfigDict()
  c.loss.l1_weight = 1.0
  c.loss.rank_weight = 1.0
  c.loss.hard_threshold = 1.0  # on the label scale

  c.train = ml_collections.ConfigDict()
  c.train.steps = 52620
  c.train.batch_size = 16
  c.train.learning_rate = 1e-3  # head; the backbone gets learning_rate * backbone_lr_mult
  c.train.backbone_lr_mult = 0.1
  c.train.weight_decay = 0.05
  # 'adamw' (decoupled decay, FAST-VQA) or 'adam_l2' (PyTorch Adam's coupled L2, SimpleVQA).
  c.train.optimizer = "adamw"
  # 'warmup_cosine' (FAST-VQA, paper §7.3) or 'step' (StepLR: x lr_step_gamma every lr_step_every
  # steps; SimpleVQA: every 2 epochs x 0.95).
  c.train.schedule = "warmup_cosine"
  # Warmup W and cosine length M of the reference schedule (paper §7.3). The rule (optim.
  # schedule_steps): -1 follows train.steps, M = train.steps and W = round(warmup_fraction x
  # train.steps) (FAST-VQA: 2.5 of 30 epochs), so --config.train.steps=N rescales both; a value
  # >= 0 is kept as set. validate() writes the resolved numbers in; the run prints them at start.
  c.train.warmup_steps = optim.FOLLOW_STEPS
  c.train.cosine_steps = optim.FOLLOW_STEPS
  c.train.warmup_fraction = optim.REFERENCE_WARMUP_FRACTION
  c.train.lr_step_every = 0
  c.train.lr_step_gamma = 0.95
  c.train.ema_decay = 0.999
  c.train.rank_weight = 0.3
  # FAST-VQA-family loss: 'plcc_rank' (PLCC + rank_weight * rank) or 'smooth_l1' (SAMA-IQA).
  c.train.loss = "plcc_rank"
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.max_checkpoints = 2
  c.train.eval_every = 0  # evaluate val + eval splits every N steps (0: only after training)
  c.train.freeze_backbone_steps = 0  # linear probe: backbone frozen for the first N steps (§7.6)

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
  c.eval.select_model = "ema"  # whose validation SRCC + PLCC picks the best checkpoint
  c.eval.logistic = True  # also PLCC / RMSE after the 4-parameter logistic fit (§7.5)
  # Also print the reference's per-metric best over all evaluations ("optimistic", §7.5).
  c.eval.report_best_per_metric = False

  c.init = ml_collections.ConfigDict()
  c.init.checkpoint = ""  # convert_weights output dir or trainer workdir; '' = random init
  c.init.use_ema = False  # from a trainer workdir: take its EMA params

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.async_save = True

  c.log = ml_collections.ConfigDict()
  c.log.tensorboard = True  # clu metric writer: <workdir>/tensorboard event files

  c.finetune = ml_collections.ConfigDict()
  c.finetune.dataset = ""  # the labelled split that vqa_jax.finetune divides into train / test
  c.finetune.seeds = (42,)  # one random split per seed (paper §7.6: 42; upstream: 10 splits)
  c.finetune.train_fraction = 0.8
  # Schedule in epochs of the split's training part (I = ceil(N_train / batch) steps per epoch):
  # train.steps = cosine_steps = epochs I, warmup ⌊warmup_epochs I⌋, backbone frozen probe_epochs I.
  # epochs = 0 keeps the train section's step counts as they are.
  c.finetune.epochs = 30
  c.finetune.probe_epochs = 10
  c.finetune.warmup_epochs = 2.5
  return c


def resolve_schedule(config: ml_collections.ConfigDict) -> None:
  """Writes the step counts of train.warmup_steps / cosine_steps left at -1 (optim.schedule_steps)."""
  warmup, cosine = optim.schedule_steps(config.train)
  config.train.warmup_steps, config.train.cosine_steps = warmup, cosine


def validate(config: ml_collections.ConfigDict) -> None:
  """Resolves the schedule's step counts, then raises ValueError naming the first inconsistent field."""
  resolve_schedule(config)
  if config.data.source not in sources.SOURCES:
    raise ValueError(f"data.source must be one of {sources.SOURCES}, got {config.data.source!r}")
  if config.data.source == "synthetic_images" and "synthetic_images" not in config.data:
    raise ValueError("data.source='synthetic_images' needs a data.synthetic_images section "
                     "(synthetic_images.ImageSpec fields)")
  if config.data.source == "tfds":
    tfds_source.check_config(config.data.tfds)
  if config.data.on_bad_video not in ("error", "skip"):
    raise ValueError(f"data.on_bad_video must be 'error' or 'skip', got {config.data.on_bad_video!r}")
  loaders.check_loader(config.data.loader)
  elements.default_workers(config.data.workers)
  if config.data.augment not in augment.POLICIES:
    raise ValueError(f"data.augment must be one of {augment.POLICIES}, got {config.data.augment!r}")
  sampling.check_config(config.sampling)
  if config.perturb.kind not in PERTURBATION_KINDS:
    raise ValueError(f"perturb.kind must be one of {PERTURBATION_KINDS}, got {config.perturb.kind!r}")
  try:
    PerturbConfig.from_config(config.perturb)
  except ValueError as e:
    raise ValueError(f"perturb: {e}") from e
  if not set(config.eval.models) <= {"raw", "ema"}:
    raise ValueError(f"eval.models must be a subset of ('raw', 'ema'), got {config.eval.models}")
  validate_selection(config)
  for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
    if config.train[name] <= 0:
      raise ValueError(f"train.{name} must be positive, got {config.train[name]}")
  if config.train.batch_size < 2:
    raise ValueError("train.batch_size must be >= 2: the PLCC and rank losses compare videos")
  validate_optimizer(config.train)
  if config.train.get("loss", "plcc_rank") not in losses.LOSSES:
    raise ValueError(f"train.loss must be one of {losses.LOSSES}, got {config.train.loss!r}")
  validate_model_inputs(config)


def validate_optimizer(train_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless train.optimizer / train.schedule name known ones, with their fields."""
  if train_cfg.get("optimizer", "adamw") not in optim.OPTIMIZERS:
    raise ValueError(f"train.optimizer must be one of {optim.OPTIMIZERS}, got "
                     f"{train_cfg.optimizer!r}")
  schedule = train_cfg.get("schedule", "warmup_cosine")
  if schedule not in optim.SCHEDULES:
    raise ValueError(f"train.schedule must be one of {optim.SCHEDULES}, got {schedule!r}")
  if schedule == "step" and not (train_cfg.lr_step_every > 0 and train_cfg.lr_step_gamma > 0):
    raise ValueError(f"train.schedule='step' needs train.lr_step_every > 0 and lr_step_gamma > 0, "
                     f"got {train_cfg.lr_step_every} and {train_cfg.lr_step_gamma}")


def validate_model_inputs(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless the model family and the sampler fit together."""
  s = config.sampling
  frames = s.get("method", "fragments") == frames_1fps.METHOD
  if families.family_name(config.model) == "simple_vqa":
    if not frames:
      raise ValueError(f"model.name='simple_vqa' takes whole frames: sampling.method must be "
                       f"{frames_1fps.METHOD!r}, got {s.get('method')!r}")
    if not config.data.get("motion_dir", ""):
      raise ValueError("model.name='simple_vqa' needs data.motion_dir, the motion features of "
                       "`python -m vqa_jax.families.simple_vqa_features --out=DIR`")
    return
  if frames:
    raise ValueError(f"sampling.method={frames_1fps.METHOD!r} feeds whole frames to SimpleVQA; "
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
