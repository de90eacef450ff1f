"""Demo: a small Video-Swin-shaped model trained with AWP on the embedded synthetic dataset.

  python -m vqa_jax.main --config=configs/demo.py --workdir=/tmp/vqa_demo

Generates (once, cached) 480 training and 128 test videos of synthetic domain A and 96 videos of
domain B (64x80 pixels, 32 frames), trains for 1000 steps of 16 clips (4 frames at interval 2, a
4x4 grid of 16-pixel fragments, which at this frame size nearly tile the frame), then evaluates on
domain-A test ('test') and on domain B ('cross', the cross-dataset test) with 4 clips per video.
Reaches SRCC ~0.84 on 'test' in ~5 minutes on 2 CPU cores (see BENCHMARKS.md).
"""

from vqa_jax.config import config_base


def get_config():
  """The demo configuration."""
  c = config_base.base_config()
  # data.synthetic is SyntheticSpec.demo(): 480 + 128 + 96 videos of 64x80 pixels, 32 frames.

  c.sampling.clip_len = 4
  c.sampling.frame_interval = 2
  c.sampling.grid = 4
  c.sampling.patch = 16
  c.sampling.num_clips_eval = 4

  c.model.embed_dim = 32
  c.model.depths = (2, 2)
  c.model.num_heads = (2, 4)
  c.model.window_size = (2, 4, 4)
  c.model.frag_biases = (True, False)
  c.model.fragments_grid = 4
  c.model.drop_path_rate = 0.0
  c.model.head_hidden = 64
  c.model.head_dropout = 0.0

  c.train.steps = 1000
  c.train.batch_size = 16
  c.train.learning_rate = 1e-3
  c.train.backbone_lr_mult = 1.0  # trained from scratch, unlike the Kinetics-initialised reference
  c.train.warmup_fraction = 0.04  # warmup 40 steps, cosine length 1000 = train.steps (config_base)
  c.train.ema_decay = 0.99
  c.train.log_every = 50
  c.train.checkpoint_every = 500

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-3

  c.eval.batch_size = 16
  return c
