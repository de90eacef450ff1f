"""SimpleVQA with AWP (paper §6.3): ResNet-50 on 1 frame/s + precomputed SlowFast-R50 motion features.

Model only for now: the trainer does not build SimpleVQA yet (its data loader and train-step wiring
come later). What works today is the motion-feature precompute:

  python -m vqa_jax.simplevqa_features --config=configs/simple_vqa.py --out=/data/lsvq_motion \
      --config.data.label_files.train=LSVQ/labels_train.txt:/data/LSVQ \
      --config.data.label_files.test=LSVQ/labels_test.txt:/data/LSVQ \
      --config.motion.weights=SLOWFAST_8x8_R50.pyth

The reference recipe, recorded here for the trainer: 8 frames per video (1 per second; 20 for
YouTube-UGC), short side 520, random 448 crop in training and centre crop at test; ImageNet
ResNet-50 init (`convert_resnet.convert_resnet50_state_dict`); Adam lr 1e-5, weight decay 1e-7,
StepLR every 2 epochs x0.95, 10 epochs, batch 8; loss L1 + rank (`losses_simplevqa.l1_rank_loss`,
arguments in the intended order, unlike the reference); AWP gamma 1e-4 perturbing conv kernels,
BatchNorm scales and both Linear kernels (`perturb.weight_mask`).
"""

import ml_collections

from vqa_jax import config_base
from vqa_jax.models.simple_vqa import simple_vqa_config


def motion_config() -> ml_collections.ConfigDict:
  """The SlowFast-R50 feature extractor (pytorchvideo `slowfast_r50`) and its chunking."""
  m = ml_collections.ConfigDict()
  m.weights = ""  # pytorchvideo SLOWFAST_8x8_R50.pyth, or an orbax dir {'params','batch_stats'}
  m.stage_sizes = (3, 4, 6, 3)
  m.width = 64
  m.head_pool = ((8, 7, 7), (32, 7, 7))
  m.resize = 224  # upstream SimpleVQA's scripts; 112 cannot run slowfast_r50's 7x7 head pool
  m.chunk_len = 32  # frames per one-second chunk (fast pathway; the slow one takes 8)
  m.min_chunks = 8  # short videos repeat their last chunk up to this many (YouTube-UGC: 20)
  m.batch_chunks = 8  # chunks per forward pass
  return m


def get_config():
  """The SimpleVQA reference configuration (model, frames, loss, motion extractor)."""
  c = config_base.base_config()
  c.data.source = "label_files"
  c.data.label_files = ml_collections.ConfigDict({"train": "", "test": ""})
  c.data.eval_splits = ("test",)

  c.model = simple_vqa_config()
  c.motion = motion_config()

  c.frames = ml_collections.ConfigDict()
  c.frames.num_frames = 8
  c.frames.short_side = 520
  c.frames.crop = 448

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "l1_rank"
  c.loss.l1_weight = 1.0
  c.loss.rank_weight = 1.0
  c.loss.hard_threshold = 1.0  # on the label scale (MOS 0-100 for LSVQ)

  c.train.batch_size = 8
  c.train.learning_rate = 1e-5
  c.train.backbone_lr_mult = 1.0
  c.train.weight_decay = 1e-7  # Adam's coupled L2 in the reference, not AdamW's decay
  c.train.ema_decay = 0.0
  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-4
  return c
