"""FAST-VQA-B with AWP: the reference recipe (upstream `options/fast/fast-b.yml`, paper §6.1, §7, §8).

  python -m vqa_jax.main --config=configs/fast_vqa_b.py --workdir=/tmp/fast_vqa_b \
      --config.data.label_files.train=LSVQ/labels_train.txt:LSVQ/videos \
      --config.data.label_files.test=LSVQ/labels_test.txt:LSVQ/videos

Sampling: 7x7 fragments of 32 pixels (224x224), 32 frames at interval 2, 1 clip per training video
and 4 per test video. Model: FAST-VQA-B (`fast_vqa_b_config()`). Training: batch 16, AdamW lr 1e-3
for the head and 1e-4 (x0.1) for the backbone, weight decay 0.05, EMA 0.999, AWP gamma 1e-4. The
schedule is expressed in steps for LSVQ (I = 1754 iterations per epoch): warmup W = 2.5 I = 4385,
cosine length M = 30 I = 52620 = the number of steps. For another training set set `train.steps`,
`train.cosine_steps` = 30 I and `train.warmup_steps` = 2.5 I by flag.

Data: `data.source` is 'label_files' and `data.label_files` is empty: set one
"LABEL_FILE:VIDEO_ROOT" entry per split by flag (`--config.data.label_files.<split>=...`); the
training split is `data.train_split` ('train') and the evaluated splits are `data.eval_splits`
(('test',) here). The backbone should start from Kinetics-400 Video Swin-T weights converted by
`python -m vqa_jax.convert_weights`.
"""

import ml_collections

from vqa_jax.config import config_base

LSVQ_ITERS_PER_EPOCH = 1754


def get_config():
  """The FAST-VQA-B reference configuration."""
  c = config_base.base_config()
  c.data.source = "label_files"
  c.data.label_files = ml_collections.ConfigDict({"train": "", "test": ""})
  c.data.train_split = "train"
  c.data.eval_splits = ("test",)

  # Sampling (7x7 fragments of 32, 32 frames at interval 2, 1 train / 4 test clips) and the model
  # (fast_vqa_b_config) are base_config()'s defaults already.

  iters = LSVQ_ITERS_PER_EPOCH
  c.train.batch_size = 16
  c.train.learning_rate = 1e-3
  c.train.backbone_lr_mult = 0.1
  c.train.weight_decay = 0.05
  c.train.warmup_steps = int(2.5 * iters)
  c.train.cosine_steps = 30 * iters
  c.train.steps = 30 * iters
  c.train.ema_decay = 0.999

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-4
  return c
