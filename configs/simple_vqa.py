"""SimpleVQA with AWP (paper §6.3): ResNet-50 on 1 frame/s + precomputed SlowFast-R50 motion features.

Two commands: the motion features once (SlowFast-R50, Kinetics-400 weights from pytorchvideo),
then training (LSVQ train -> LSVQ test by default; add splits by flag):

  python -m vqa_jax.simple_vqa_features --config=configs/simple_vqa.py --out=/data/lsvq_motion \
      --config.data.label_files.train=LSVQ/labels_train.txt:/data/LSVQ \
      --config.data.label_files.test=LSVQ/labels_test.txt:/data/LSVQ \
      --config.motion.weights=SLOWFAST_8x8_R50.pyth
  python -m vqa_jax.main --config=configs/simple_vqa.py --workdir=/tmp/simple_vqa \
      --config.data.label_files.train=LSVQ/labels_train.txt:/data/LSVQ \
      --config.data.label_files.test=LSVQ/labels_test.txt:/data/LSVQ \
      --config.data.motion_dir=/data/lsvq_motion --config.init.checkpoint=/data/simple_vqa_init

`init.checkpoint`: ImageNet ResNet-50 (torchvision `resnet50-19c8e357.pth`) converted with
`python -m vqa_jax.convert_weights --format=resnet50 --src=resnet50-19c8e357.pth
--dst=/data/simple_vqa_init` (params and BatchNorm statistics; the regressor freshly initialised);
'' trains from scratch. Scoring a video (its motion features computed on the fly):
`python -m vqa_jax.score --config=configs/simple_vqa.py --checkpoint=/tmp/simple_vqa/best
--config.motion.weights=SLOWFAST_8x8_R50.pyth VIDEO`. configs/paper/lsvq_simple_vqa_awp.py is the paper's run on the standard
label layout (validation hold-out, cross-dataset tests).

The reference recipe (upstream SimpleVQA `train.py`, `data_loader.py`, `extract_frame_LSVQ.py`):
8 frames per video at 1 frame/s, the last repeated for short videos (20 for YouTube-UGC in its
cross-dataset loader; here `clip_len` is one value for all splits); short side 520 (OpenCV
bilinear), RandomCrop 448 drawn per frame in training, CenterCrop at test; ImageNet mean/std;
Adam lr 1e-5 with weight_decay 1e-7 (coupled L2) on every parameter, StepLR every 2 epochs x0.95,
10 epochs of batch 8 (28,056 LSVQ-train videos: 3,507 steps per epoch), no EMA. Loss L1 + rank
with the arguments in the intended order (`simple_vqa_loss.l1_rank_loss`; the reference swaps them,
paper §11 f). AWP gamma 1e-4 perturbs conv kernels, BatchNorm scales and both Linear kernels
(`perturb.weight_mask`); BatchNorm statistics are updated once per step, from the clean pass
(the reference updates them in both passes, §11 j).
"""

import ml_collections

from vqa_jax.config import config_base
from vqa_jax.config import schedule
from vqa_jax.config import sections

LSVQ_TRAIN_VIDEOS = 28056
EPOCHS = 10
LR_STEP_EPOCHS = 2


def set_epochs(c: ml_collections.ConfigDict, num_train: int, epochs: int = EPOCHS,
               lr_step_epochs: int = LR_STEP_EPOCHS) -> int:
  """Steps, StepLR period, evaluation and checkpoint period from epochs; returns I (steps/epoch).

  The reference's DataLoader keeps the last partial batch: I = ceil(num_train / batch_size).
  """
  iters = schedule.steps_per_epoch(num_train, c.train.batch_size)
  c.train.steps = epochs * iters
  c.train.lr_step_every = lr_step_epochs * iters
  c.train.eval_every = iters
  c.train.checkpoint_every = iters
  return iters


def make_simple_vqa(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Turns a config's model, sampling, loss, optimizer and perturbation into SimpleVQA-AWP's."""
  c.model = sections.simple_vqa_config()

  c.sampling.method = "frames_1fps"
  c.sampling.clip_len = 8  # frames per video
  c.sampling.short_side = 520
  c.sampling.crop = 448
  c.sampling.num_clips_train = 1
  c.sampling.num_clips_eval = 1  # centred crops: more clips would be identical

  c.loss.l1_weight = 1.0
  c.loss.hard_rank_weight = 1.0
  c.loss.hard_threshold = 1.0  # on the label scale (MOS 0-100 for LSVQ)

  c.train.batch_size = 8
  c.train.optimizer = "adam_l2"
  c.train.learning_rate = 1e-5
  c.train.backbone_lr_mult = 1.0
  c.train.weight_decay = 1e-7  # Adam's coupled L2 in the reference, not AdamW's decay
  c.train.schedule = "step"
  c.train.lr_step_gamma = 0.95
  c.train.warmup_steps = 0
  c.train.ema_decay = 0.0  # no EMA in the reference: the 'ema' params equal the raw ones
  c.eval.models = ("raw",)
  c.eval.select_model = "raw"
  c.eval.batch_size = 8

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-4
  return c


def get_config():
  """The SimpleVQA-AWP reference configuration (label files and motion_dir set by flag)."""
  c = make_simple_vqa(config_base.base_config())
  c.data.source = "label_files"
  c.data.label_files = ml_collections.ConfigDict({"train": "", "test": ""})
  c.data.eval_splits = ("test",)
  set_epochs(c, LSVQ_TRAIN_VIDEOS)
  return c
