"""Smoke: the tiniest end-to-end run (tiny synthetic set, tiny model, a few steps), used by tests.

  python -m vqa_jax.main --config=configs/smoke.py --workdir=/tmp/vqa_smoke
"""

from vqa_jax.config import config_base
from vqa_jax.config.specs import SyntheticSpec


def get_config():
  """The smoke-test configuration."""
  c = config_base.base_config()
  c.data.synthetic = config_base.synthetic_config(SyntheticSpec.tiny())

  c.sampling.update(dict(clip_len=4, frame_interval=2, grid=2, patch=16, num_clips_eval=2))
  c.model.update(dict(embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=(2, 4, 4),
                      frag_biases=(True, False), fragments_grid=2, head_hidden=16))
  # cosine_steps follows train.steps (config_base): 6 here, N under --config.train.steps=N.
  c.train.update(dict(steps=6, batch_size=8, backbone_lr_mult=1.0, warmup_steps=2, ema_decay=0.9,
                      log_every=2, checkpoint_every=3))
  c.perturb.update(dict(kind="awp", gamma=1e-3))
  c.eval.batch_size = 8
  return c
