"""Shared pieces of the paper's experiment configs in configs/paper/ (paper §2, §6, §7).

Every config takes one argument "LABELS_DIR,VIDEOS_DIR" (default "labels,videos"):

  python -m vqa_jax.main --config=configs/paper/lsvq_fast_vqa_b_awp.py:/data/labels,/data/videos \
      --workdir=runs/lsvq_awp

LABELS_DIR holds FAST-VQA's label folders (LSVQ/, KoNViD/, LIVE_VQC/, YouTubeUGC/, the layout of
upstream `examplar_data_labels/` and of ../shared/labels) and VIDEOS_DIR one video folder per
dataset with the same names (VIDEOS_DIR/LSVQ/yfcc-batch1/747.mp4, ...). Any single split can be
redirected by flag: --config.data.label_files.konvid=OTHER_LABELS.txt:OTHER_ROOT.

Choices beyond the reference (stated once here):
- Model selection: `data.val_fraction` = 5% of LSVQ-train (seed `seed`, 1,403 videos) is held
  out as 'lsvq_val'; the best EMA checkpoint by its SRCC + PLCC is reported beside the final one.
  The reference trains on all 28,056 videos and reports per-metric bests on the test sets
  (`--config.eval.report_best_per_metric=true` prints those too, labelled optimistic;
  `--config.data.val_fraction=0 --config.data.val_split=''` trains on the full set).
- Evaluation every epoch on the validation split and every test set, as the reference.
- The backbone should start from Kinetics-400 Video Swin-T weights converted by
  `python -m vqa_jax.convert_weights` (`--config.init.checkpoint=DIR`); '' trains from scratch.
"""

import math

import ml_collections

from vqa_jax.config import config_base
from vqa_jax.config import schedule

# split name -> (label file under LABELS_DIR, video folder under VIDEOS_DIR)
DATASETS = {
    "lsvq_train": ("LSVQ/train_labels.txt", "LSVQ"),
    "lsvq_test": ("LSVQ/labels_test.txt", "LSVQ"),
    "lsvq_1080p": ("LSVQ/labels_1080p.txt", "LSVQ"),
    "konvid": ("KoNViD/labels.txt", "KoNViD"),
    "livevqc": ("LIVE_VQC/labels.txt", "LIVE_VQC"),
    "youtube_ugc": ("YouTubeUGC/labels.txt", "YouTubeUGC"),
}
CROSS_DATASET_TESTS = ("lsvq_test", "lsvq_1080p", "konvid", "livevqc", "youtube_ugc")
LSVQ_TRAIN_VIDEOS = 28056  # paper §7.1
VAL_FRACTION = 0.05
GAMMA = 1e-4  # AWP / RWP radius of the released code and README (paper §1.1)


def parse_arg(arg: str) -> tuple[str, str]:
  """(labels_dir, videos_dir) from "LABELS_DIR,VIDEOS_DIR"."""
  labels_dir, sep, videos_dir = (arg or "labels,videos").partition(",")
  if not sep or not labels_dir or not videos_dir:
    raise ValueError(f"config argument must be 'LABELS_DIR,VIDEOS_DIR', got {arg!r}")
  return labels_dir, videos_dir


def label_files(names, arg: str) -> ml_collections.ConfigDict:
  """data.label_files for the named datasets: "LABEL_FILE:VIDEO_ROOT" each."""
  labels_dir, videos_dir = parse_arg(arg)
  return ml_collections.ConfigDict({
      name: f"{labels_dir}/{DATASETS[name][0]}:{videos_dir}/{DATASETS[name][1]}" for name in names})


def set_epoch_schedule(c: ml_collections.ConfigDict, num_train: int, drop_last: bool = False,
                       epochs: int = 30, warmup_epochs: float = 2.5) -> int:
  """Steps, warmup, cosine length, eval and checkpoint period in epochs (paper §7.3); returns I."""
  iters = schedule.steps_per_epoch(num_train, c.train.batch_size, drop_last)
  c.train.steps = c.train.cosine_steps = epochs * iters
  c.train.warmup_steps = schedule.epochs_to_steps(warmup_epochs, iters)
  c.train.eval_every = iters
  c.train.checkpoint_every = iters
  return iters


def lsvq_config(arg: str, perturb_kind: str = "none") -> ml_collections.ConfigDict:
  """FAST-VQA-B trained on LSVQ-train, tested on every cross-dataset set; perturbation radius GAMMA."""
  c = config_base.base_config()  # the FAST-VQA-B model, sampling and optimizer (paper §6.1, §7)
  c.data.source = "label_files"
  c.data.label_files = label_files(("lsvq_train",) + CROSS_DATASET_TESTS, arg)
  c.data.train_split = "lsvq_train"
  c.data.eval_splits = CROSS_DATASET_TESTS
  c.data.val_split = "lsvq_val"
  c.data.val_fraction = VAL_FRACTION
  c.train.batch_size = 16
  set_epoch_schedule(c, math.floor((1 - VAL_FRACTION) * LSVQ_TRAIN_VIDEOS))
  c.perturb.kind = perturb_kind
  c.perturb.gamma = GAMMA
  c.eval.select_model = "ema"
  return c


def finetune_config(arg: str, dataset: str) -> ml_collections.ConfigDict:
  """Fine-tuning FAST-VQA-B on one dataset (paper §7.6): 80/20 split, 10 probe + 20 full epochs."""
  c = config_base.base_config()
  c.data.source = "label_files"
  c.data.label_files = label_files((dataset,), arg)
  c.data.train_split = dataset  # unused by vqa_jax.finetune, which splits `finetune.dataset`
  c.data.eval_splits = ()
  c.finetune.dataset = dataset
  c.finetune.seeds = (42,)  # the reference's one split; (0, 1, ..., 9) for upstream's ten
  c.finetune.train_fraction = 0.8
  c.finetune.epochs = 30
  c.finetune.probe_epochs = 10
  c.finetune.warmup_epochs = 2.5
  c.train.batch_size = 16
  c.train.eval_every = 1  # becomes one epoch (vqa_jax.finetune sets it from the split size)
  c.perturb.kind = "none"  # the released fine-tuning has no AWP; 'awp' fine-tunes with it
  c.perturb.gamma = GAMMA
  c.init.use_ema = True  # start from the LSVQ run's EMA model (the reference's `_s` checkpoint)
  return c
