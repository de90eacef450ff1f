"""FAST-VQA-M: the mobile variant (upstream `options/fast/fast-m.yml`).

  python -m vqa_jax.main --config=configs/fast_vqa_m.py --workdir=/tmp/fast_vqa_m \
      --config.data.label_files.train=... --config.data.label_files.test=...

Differences from `configs/fast_vqa_b.py` (whose recipe and data fields it keeps): 4x4 fragments
of 32 pixels (128x128), 16 frames at interval 2 (upstream `clip_len: 16`, 4 test clips), a
Video Swin-T backbone with window (4, 4, 4) and no fragment (GRPB) bias tables in any stage.
Upstream trains it with `ema: false`; this config keeps the EMA, which only adds an evaluated
copy. Assumption: upstream's `aligned: 8` (patch positions redrawn every 8 frames) is not
modelled; here positions are aligned over the whole 16-frame clip.
"""

from configs import fast_vqa_b


def get_config():
  """The FAST-VQA-M configuration."""
  c = fast_vqa_b.get_config()
  c.sampling.clip_len = 16
  c.sampling.grid = 4
  c.sampling.patch = 32
  c.model.window_size = (4, 4, 4)
  c.model.frag_biases = (False, False, False, False)
  c.model.fragments_grid = 4
  return c
