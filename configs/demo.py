"""Demo: a small Video-Swin-shaped model trained with AWP on the embedded synthetic dataset.

  python -m vqa_jax.main --config=configs/demo.py --workdir=/tmp/vqa_demo

Generates (once, cached) 480 training and 128 test videos of synthetic domain A and 96 videos of
domain B (64x80 pixels, 32 frames), trains for 1000 steps of 16 clips (4 frames at interval 2, a
4x4 grid of 16-pixel fragments, which at this frame size nearly tile the frame), then evaluates on
domain-A test ('test') and on domain B ('cross', the cross-dataset test) with 4 clips per video.
Reaches SRCC ~0.84 on 'test' in ~5 minutes on 2 CPU cores (see BENCHMARKS.md).
"""

import ml_collections

from vqa_jax.config import config_base


def small_swin(model: ml_collections.ConfigDict) -> None:
  """The demos' 2-stage Swin (32 channels, 2 + 2 blocks) on a 4x4 fragment grid, no dropout."""
  model.update(dict(embed_dim=32, depths=(2, 2), num_heads=(2, 4), fragments_grid=4,
                    drop_path_rate=0.0, head_dropout=0.0))


def from_scratch_awp(c: ml_collections.ConfigDict, steps: int, warmup_fraction: float) -> None:
  """The demos' training: batch 16, AdamW 1e-3 on every layer (no pretrained backbone), AWP 1e-3."""
  c.train.update(dict(steps=steps, batch_size=16, learning_rate=1e-3, backbone_lr_mult=1.0,
                      warmup_fraction=warmup_fraction, ema_decay=0.99, log_every=50,
                      checkpoint_every=500))
  c.perturb.update(dict(kind="awp", gamma=1e-3))
  c.eval.batch_size = 16


def get_config():
  """The demo configuration."""
  c = config_base.base_config()
  # data.synthetic is SyntheticSpec.demo(): 480 + 128 + 96 videos of 64x80 pixels, 32 frames.
  c.sampling.update(dict(clip_len=4, frame_interval=2, grid=4, patch=16, num_clips_eval=4))
  small_swin(c.model)
  c.model.update(dict(window_size=(2, 4, 4), frag_biases=(True, False), head_hidden=64))
  # warmup 40 steps; the cosine's length is train.steps (config_base)
  from_scratch_awp(c, steps=1000, warmup_fraction=0.04)
  return c
