"""The full default configuration: every section and field a config file or the library reads.

Config files in `configs/` start from `base_config()` and change what they need; absl flags then
override single fields, e.g. `--config.train.steps=200`. Validation is `validation.validate`. This
module imports only the config package (no jax, no data or model modules), so loading a config
stays light.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections

from vqa_jax.config import choices
from vqa_jax.config import sections
from vqa_jax.config.specs import ImageSpec
from vqa_jax.config.specs import SyntheticSpec


def synthetic_config(spec: SyntheticSpec | ImageSpec) -> ml_collections.ConfigDict:
  """A SyntheticSpec or ImageSpec as a config section (each field can be overridden by a flag)."""
  return ml_collections.ConfigDict(dataclasses.asdict(spec))


def sampling_config() -> ml_collections.ConfigDict:
  """The sampling section: FAST-VQA-B's fragments (and each other sampler's fields)."""
  s = ml_collections.ConfigDict()
  s.clip_len = 32
  s.frame_interval = 2
  s.grid = 7
  s.patch = 32
  s.num_clips_train = 1
  s.num_clips_eval = 4
  # 'fragments' (FAST-VQA), 'fragments_t' (FasterVQA's temporal segments), 'sama', 'sama_iqa' or
  # 'frames_1fps' (SimpleVQA) (data/sampling/clip_sampler.py).
  s.method = "fragments"
  s.aligned = 0  # frames sharing patch positions; 0 = the whole clip (FAST-VQA's 32 = clip_len)
  s.t_frag = 1  # 'fragments_t': temporal segments per clip (FasterVQA: 8)
  s.sama_mask = "none"  # 'sama': 'none' (upstream default), 'patch' or 'window' masking
  # Evaluation offsets: 'centred' (deterministic, the default) or 'random' (the reference's stochastic
  # test protocol, drawn reproducibly from eval_seed and each video's index). Training is random.
  s.eval_offsets = "centred"
  s.eval_seed = 0
  # 'frames_1fps' (SimpleVQA, data/sampling/frames_1fps.py): clip_len frames at 1 fps, short side
  # resized to short_side, a crop x crop square per frame (random in training, centred in evaluation).
  s.short_side = 520
  s.crop = 448
  return s


_SAMPLING_DEFAULTS = sampling_config().to_dict()


def sampling_fields(sampling: Mapping[str, Any]) -> dict[str, Any]:
  """`sampling` as a dict with the default of every field it lacks (a section, or a partial dict).

  How the data functions that take a sampling mapping read it: each default is written once, here.
  """
  return {**_SAMPLING_DEFAULTS, **sampling}


def base_config() -> ml_collections.ConfigDict:
  """The FAST-VQA-B recipe on the synthetic dataset; configs shrink or redirect it."""
  c = ml_collections.ConfigDict()
  c.seed = 42

  c.data = ml_collections.ConfigDict()
  # 'synthetic' (videos, data.synthetic), 'synthetic_images' (IQA images, data.synthetic_images;
  # see configs/iqa_demo.py), 'label_files' or 'tfds'.
  c.data.source = "synthetic"
  c.data.cache_dir = ""  # '' -> $VQA_JAX_CACHE or ~/.cache/vqa_jax
  # Every SyntheticSpec field (the demo preset); see vqa_jax/data/synthetic/.
  c.data.synthetic = synthetic_config(SyntheticSpec.demo())
  # Every ImageSpec field (the demo preset): source 'synthetic_images' (data/synthetic/images.py).
  c.data.synthetic_images = synthetic_config(ImageSpec())
  # For source 'label_files': split name -> "LABEL_FILE:DATA_ROOT" (FAST-VQA label format).
  c.data.label_files = ml_collections.ConfigDict()
  # For source 'tfds': a builder of data/tfds_builders read from its manual_dir (data/tfds_source.py).
  c.data.tfds = sections.tfds_config()
  c.data.train_split = "train"
  # 'error': a video that cannot be decoded stops the run, naming the file. 'skip': it is logged once
  # and counted; training substitutes the next decodable video, evaluation leaves it out.
  c.data.on_bad_video = "error"
  # Input loader: 'tf_data' (tf.data + OpenCV, the default) or 'grain' (grain worker processes; no
  # TensorFlow anywhere, for hosts without it). Both yield bit-identical batches
  # (data/element_plan.py).
  c.data.loader = "tf_data"
  # Decode workers (tf.data threads or grain processes), each single-threaded: -1 = the host's
  # cores, 0 = decode in the main process.
  c.data.workers = -1
  # Video decoder: 'opencv' (the loader's CPU workers, the default), 'nvdec' (NVIDIA's hardware
  # decoder through PyNvVideoCodec, `pip install vqa-jax[nvdec]`; fragments cut on the GPU) or
  # 'hybrid' (a share `nvdec_share` of each batch from NVDEC, the rest from the CPU workers). The
  # batches hold the same elements in the same order whichever decodes them
  # (data/nvdec_pipeline.py).
  c.data.decoder = "opencv"
  c.data.nvdec_share = 0.6
  # Threads, each holding one retained NVDEC decoder reconfigured per video (8 measured best).
  c.data.nvdec_threads = 8
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
  # (`python -m vqa_jax.simple_vqa_features --out=DIR`: index.json + one .npy per video).
  c.data.motion_dir = ""

  c.sampling = sampling_config()

  # FAST-VQA-B: Video Swin-T with GRPB, VQA head. Another family replaces the section (families/),
  # e.g. SimpleVQA with sections.simple_vqa_config() (model.name 'simple_vqa').
  c.model = sections.fast_vqa_b_config()
  # SimpleVQA's motion-feature extractor, SlowFast-R50 (scoring/motion_features.py, score).
  c.motion = sections.motion_config()

  # SimpleVQA's loss (families/simple_vqa_loss.py): l1_weight * L1 + hard_rank_weight * the rank
  # loss over the hard pairs, whose labels differ by less than hard_threshold. FAST-VQA's loss is
  # train.loss (weighted by train.plcc_rank_weight).
  c.loss = ml_collections.ConfigDict()
  c.loss.l1_weight = 1.0
  c.loss.hard_rank_weight = 1.0
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
  # Warmup W and cosine length M of the reference schedule (paper §7.3). The rule (validation.
  # schedule_steps): -1 follows train.steps, M = train.steps and W = round(warmup_fraction x
  # train.steps) (FAST-VQA: 2.5 of 30 epochs), so --config.train.steps=N rescales both; a value
  # >= 0 is kept as set. validate() writes the resolved numbers in; the run prints them at start.
  c.train.warmup_steps = choices.FOLLOW_STEPS
  c.train.cosine_steps = choices.FOLLOW_STEPS
  c.train.warmup_fraction = choices.REFERENCE_WARMUP_FRACTION
  c.train.lr_step_every = 0
  c.train.lr_step_gamma = 0.95
  c.train.ema_decay = 0.999
  # FAST-VQA-family loss: 'plcc_rank' (PLCC + plcc_rank_weight * rank) or 'smooth_l1' (SAMA-IQA).
  c.train.loss = "plcc_rank"
  c.train.plcc_rank_weight = 0.3  # the rank term's weight in 'plcc_rank' (the reference's 0.3)
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.train.max_checkpoints = 2
  c.train.eval_every = 0  # evaluate val + eval splits every N steps (0: only after training)
  c.train.freeze_backbone_steps = 0  # linear probe: backbone frozen for the first N steps (§7.6)

  c.perturb = ml_collections.ConfigDict()
  c.perturb.kind = "awp"  # 'none' | 'awp' | 'rwp' | 'sam' | 'asam'
  c.perturb.gamma = 1e-4
  c.perturb.reuse_dropout_rng = False
  # The update pass draws the plain step's dropout masks, the clean pass fresh ones (perturb.py).
  c.perturb.pair_dropout_rng = False
  c.perturb.rho = 0.05  # absolute radius of 'sam' / 'asam' (gamma is awp/rwp's relative radius)
  c.perturb.steps = 1  # ascent steps of radius/steps, each projected back onto the feasible set
  c.perturb.every_k = 1  # recompute the perturbation every k steps, reuse the last one in between
  c.perturb.combine = 0.0  # update with (1 - combine) * perturbed grad + combine * clean grad
  # How the perturbed pass carries the perturbation in a low compute dtype (perturb_precision.py):
  # 'cast' (w + δ cast per layer), 'split' (x·cast(w) + x·cast(δ)), 'float32' (that pass in f32);
  # 'auto': 'float32' when model.dtype is below float32, else 'cast' (BENCHMARKS.md).
  c.perturb.precision = "auto"

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
  # A named pretrained model (`vqa-jax models`), e.g. 'swin-t-k400' (the Kinetics-400 Video Swin-T
  # backbone): fetched, converted for this run's model and cached ($VQA_JAX_CACHE/models/), then
  # read as init.checkpoint would be. '' = none; exclusive with init.checkpoint.
  c.init.pretrained = ""

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
