"""IQA with AWP: Swin-T on grid mini-patch fragments of one image, the SAMA-IQA recipe on KonIQ-10k.

  python -m vqa_jax.convert_weights --src=swin_tiny_patch4_window7_224.pth --dst=/tmp/swin_t_iqa
  python -m vqa_jax.main --config=configs/iqa_swin_t.py --workdir=/tmp/iqa_koniq \
      --config.init.checkpoint=/tmp/swin_t_iqa \
      --config.data.label_files.train=koniq/train.csv:koniq/1024x768 \
      --config.data.label_files.test=koniq/test.csv:koniq/1024x768

Each LABEL_FILE is a KonIQ-10k csv (`koniq10k_scores_and_distributions.csv` or a subset of its
rows with the same header; score MOS_zscore, or `FILE#MOS` for the 1-5 MOS) or a FAST-VQA label
file listing images.

SAMA's protocol, 10 random 80/20 splits of the whole csv, is `vqa_jax.finetune` with the
`:splits` variant (split k shuffles with random.Random(123 k), k = 0..9, exactly as upstream's
`index_all`; no linear probe; 50 epochs, warmup 5):

  python -m vqa_jax.finetune --config=configs/iqa_swin_t.py:splits --workdir=/tmp/iqa_splits \
      --config.init.checkpoint=/tmp/swin_t_iqa \
      --config.data.label_files.koniq=koniq/koniq10k_scores_and_distributions.csv:koniq/1024x768

finetune reports the mean +- std over splits of the final (and selected) checkpoint; upstream
reports the median over splits of each split's per-metric best epoch. finetune's epoch schedule
sets a cosine decay over the 50 epochs (upstream: constant after warmup).

Upstream (Sissuire/SAMA @ 38c02bf, `IQA/options/fast-sama-iqa.yml` and
`IQA/demo_train_iqa_baseline.py`, paper §4 Table D): KonIQ-10k 1024x768, 10 splits 80/20, 50
epochs, batch 64, AdamW lr 1e-3 (head) and 1e-4 (backbone x0.1), wd 0.05, warmup 5 epochs then a
constant lr, EMA 0.999 (the EMA model is evaluated), 8x8 fragments of 32 px (256x256), Swin-V2-T
(window 8, `swinv2_tiny_patch4_window8_256.pth`), an MLP head 768-64-1 per token (dropout 0.5),
score = mean over the 8x8 tokens; test offsets centred.

This port, and where it differs (reasons in brackets):
  * An image is a 1-frame clip (`video_io` reads jpg/png/... as one frame): clip_len 1, the Video
    Swin backbone with temporal patch 1 and window (1, 7, 7), which is exactly a 2D Swin-T (V1).
    Upstream's Swin-V2-T (cosine attention, log-spaced continuous position bias, res-post-norm)
    is configs/iqa_swin_v2.py, with SAMA-IQA's sampler and SmoothL1 loss.
  * 7x7 fragments of 32 px (224x224), not 8x8 (256): the ImageNet Swin-T V1 checkpoint
    (`swin_tiny_patch4_window7_224.pth`, converted by `vqa_jax.convert_weights`) has window 7 at
    224, so stage 4 (7x7 tokens) is one window, as in FAST-VQA.
  * No GRPB (frag_biases all False): SAMA's IQA Swin has plain relative position bias. Set
    `--config.model.frag_biases='(True,True,True,False)'` for FAST-VQA's gated bias.
  * Sampling 'fragments' (FAST-VQA's grid mini-patches at native resolution, SAMA-IQA's
    'fragment' stype). SAMA-IQA's default 'sama' stype (native and short-side-256 fragments mixed
    by a 32x32 window checkerboard) is `sampling.method='sama_iqa'` (configs/iqa_swin_v2.py).
  * Loss PLCC + 0.3 rank (this project's; SAMA-IQA trains SmoothL1 on MOS_zscore:
    `train.loss='smooth_l1'`, as configs/iqa_swin_v2.py sets). Constant lr after warmup: cosine_steps is set so large that the
    cosine factor stays 1 to 1e-9. Warmup k/W (upstream max(0.01, k/W)).
  * No flip / RandomRotation(45) augmentation (upstream trains with both; data.augment offers
    AutoAugment only).
  * AWP gamma 1e-4 as FAST-VQA-AWP (the paper's IQA gamma was not found, paper §4).

Schedule in steps for 80 % of KonIQ-10k's 10,073 images (8,058) at batch 64: I = 125 steps per
epoch (drop_remainder), warmup 5 I = 625, 50 I = 6250 steps.
"""

import ml_collections

from vqa_jax.config import config_base
from vqa_jax.config import schedule

KONIQ_TRAIN_IMAGES = 8058  # int(0.8 * 10073), SAMA's split.
BATCH = 64
EPOCHS = 50
WARMUP_EPOCHS = 5
CONSTANT_LR_COSINE_STEPS = 10**9  # 0.5 (1 + cos(pi k / M)) >= 1 - 1e-9 for k <= 6250.


def iqa_swin_t_model() -> ml_collections.ConfigDict:
  """Swin-T (V1) as a Video Swin with temporal patch 1 and window (1, 7, 7); no GRPB."""
  m = config_base.base_config().model
  # drop_path_rate: the Swin-T ImageNet recipe's (SAMA's V2: 0.2)
  m.update(dict(patch_size=(1, 4, 4), window_size=(1, 7, 7), frag_biases=(False,) * 4,
                fragments_grid=7, drop_path_rate=0.1, head_hidden=64, head_dropout=0.5))
  return m


def image_sampling(c: ml_collections.ConfigDict) -> None:
  """One frame, one view per image, grid x grid fragments (set grid and patch after)."""
  c.sampling.update(dict(method="fragments", clip_len=1, frame_interval=1, aligned=0,
                         num_clips_train=1, num_clips_eval=1, eval_offsets="centred"))


SPLIT_SEEDS = tuple(123 * k for k in range(10))  # upstream random.Random(ii * 123), ii < 10
PROTOCOLS = ("single", "splits")


def get_config(protocol: str = "single"):
  """The IQA Swin-T configuration: one run ('single') or SAMA's 10 splits ('splits', finetune)."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"configs/iqa_swin_t.py:{protocol}: the variant must be one of {PROTOCOLS}")
  c = config_base.base_config()
  c.data.source = "label_files"
  c.data.label_files = ml_collections.ConfigDict({"train": "", "test": ""})
  c.data.train_split = "train"
  c.data.eval_splits = ("test",)
  if protocol == "splits":
    c.data.label_files = ml_collections.ConfigDict({"koniq": ""})
    c.finetune.dataset = "koniq"
    c.finetune.seeds = SPLIT_SEEDS
    c.finetune.train_fraction = 0.8
    c.finetune.epochs = EPOCHS
    c.finetune.probe_epochs = 0
    c.finetune.warmup_epochs = WARMUP_EPOCHS

  image_sampling(c)
  c.sampling.grid = 7
  c.sampling.patch = 32

  c.model = iqa_swin_t_model()

  iters = schedule.steps_per_epoch(KONIQ_TRAIN_IMAGES, BATCH, drop_last=True)
  c.train.batch_size = BATCH
  c.train.learning_rate = 1e-3
  c.train.backbone_lr_mult = 0.1
  c.train.weight_decay = 0.05
  c.train.warmup_steps = WARMUP_EPOCHS * iters
  c.train.cosine_steps = CONSTANT_LR_COSINE_STEPS
  c.train.steps = EPOCHS * iters
  c.train.ema_decay = 0.999
  c.train.checkpoint_every = iters

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-4

  c.eval.batch_size = BATCH
  return c
