"""SAMA: the FAST-VQA-B network with SAMA's scaling-and-masking sampling and recipe (paper §6.2).

  python -m vqa_jax.main --config=configs/sama.py --workdir=/tmp/sama \
      --config.data.label_files.train=LSVQ/labels_mytrain.txt:LSVQ/videos \
      --config.data.label_files.test=LSVQ/labels_mytest.txt:LSVQ/videos

Upstream option values (Sissuire/SAMA @ 38c02bf, VQA/options/fast-SAMA-train.yml): stype: sama;
fragments_h/w 7, fsize_h/w 32, aligned 32, clip_len 32, frame_interval 2, num_clips 1 (train) and
4 (every validation set); train_batch_size 12 (drop_last), num_epochs 30, warmup_epochs 2.5,
lr 1e-3, backbone_lr_mult 0.1, wd 0.05, ema; model DiViDeAddEvaluator / swin_tiny_grpb /
VQAHead(768, 64), Kinetics-400 Video Swin-T init. Sampling (`data/sampling/sama.py`): 16 scales
linspace(1, 1 / ratio) per clip, one per frame pair; random cell fractions in training, centred
(u = 0.5) at test; temporal offsets random in training and centred at test, indices past the end
clamped to the last frame. No masking (upstream's 'sama'; `sampling.sama_mask` selects the
'patch' / 'window' variants). Test offsets are centred upstream already, so `eval_offsets` stays
'centred'.

Perturbation: FAST-VQA-B's (AWP, gamma 1e-4), i.e. SAMA-AWP; `--config.perturb.kind=none` gives
the plain SAMA baseline. The global batch of 12 needs a device count dividing 12.

Schedule in steps for LSVQ's 28,056 training videos at batch 12: I = 2338 iterations per epoch,
warmup W = 2.5 I = 5845, cosine length M = 30 I = 70140 = the number of steps.

Not modelled here: SAMA's clean forward scores a clip as the *sum* over time of the spatial mean
(16x the mean used by its AWP pass and by this port; paper §1.3); PLCC is scale-invariant, the
rank term nearly so.
"""

from configs import fast_vqa_b
from vqa_jax.config import schedule

SAMA_TRAIN_VIDEOS = 28056
SAMA_BATCH = 12


def get_config():
  """The SAMA configuration."""
  c = fast_vqa_b.get_config()
  c.sampling.update(dict(method="sama", sama_mask="none", clip_len=32, frame_interval=2, grid=7,
                         patch=32, aligned=0, num_clips_train=1, num_clips_eval=4,
                         eval_offsets="centred"))

  iters = schedule.steps_per_epoch(SAMA_TRAIN_VIDEOS, SAMA_BATCH, drop_last=True)
  c.train.batch_size = SAMA_BATCH
  c.train.warmup_steps = schedule.epochs_to_steps(2.5, iters)
  c.train.cosine_steps = 30 * iters
  c.train.steps = 30 * iters
  return c
