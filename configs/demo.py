"""Demo: a small Video-Swin-shaped model trained with AWP on the embedded synthetic dataset.

Runs in a few minutes on 2 CPU cores:
  python -m vqa_jax.main --config=configs/demo.py --workdir=/tmp/vqa_demo
Trains on synthetic domain A, evaluates on domain-A test ('test') and domain B ('cross').
"""

from vqa_jax import config_base


def get_config():
  """The demo configuration."""
  c = config_base.base_config()
  c.data.synthetic.preset = "demo"

  c.sampling.clip_len = 8
  c.sampling.frame_interval = 2
  c.sampling.grid = 4
  c.sampling.patch = 16
  c.sampling.num_clips_eval = 2

  c.model.embed_dim = 32
  c.model.depths = (2, 2)
  c.model.num_heads = (2, 4)
  c.model.window_size = (4, 4, 4)
  c.model.frag_biases = (True, False)
  c.model.fragments_grid = 4
  c.model.drop_path_rate = 0.05
  c.model.head_hidden = 64
  c.model.head_dropout = 0.2

  c.train.steps = 400
  c.train.batch_size = 8
  c.train.learning_rate = 1e-3
  c.train.backbone_lr_mult = 1.0  # trained from scratch, unlike the Kinetics-initialised reference
  c.train.warmup_steps = 40
  c.train.cosine_steps = 400
  c.train.ema_decay = 0.99
  c.train.log_every = 20
  c.train.checkpoint_every = 200

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-3

  c.eval.batch_size = 16
  return c
