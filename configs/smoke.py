"""Smoke: the tiniest end-to-end run (tiny synthetic set, tiny model, a few steps), used by tests.

  python -m vqa_jax.main --config=configs/smoke.py --workdir=/tmp/vqa_smoke
"""

from vqa_jax.config import config_base
from vqa_jax.config.specs import SyntheticSpec


def get_config():
  """The smoke-test configuration."""
  c = config_base.base_config()
  c.data.synthetic = config_base.synthetic_config(SyntheticSpec.tiny())

  c.sampling.clip_len = 4
  c.sampling.frame_interval = 2
  c.sampling.grid = 2
  c.sampling.patch = 16
  c.sampling.num_clips_eval = 2

  c.model.embed_dim = 16
  c.model.depths = (1, 1)
  c.model.num_heads = (1, 2)
  c.model.window_size = (2, 4, 4)
  c.model.frag_biases = (True, False)
  c.model.fragments_grid = 2
  c.model.head_hidden = 16

  c.train.steps = 6
  c.train.batch_size = 8
  c.train.backbone_lr_mult = 1.0
  c.train.warmup_steps = 2
  # cosine_steps follows train.steps (config_base): 6 here, N under --config.train.steps=N.
  c.train.ema_decay = 0.9
  c.train.log_every = 2
  c.train.checkpoint_every = 3

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-3

  c.eval.batch_size = 8
  return c
