"""FAST-VQA-M: the mobile variant (upstream `options/fast/fast-m.yml`, `swin_tiny_grpb_m`).

  python -m vqa_jax.main --config=configs/fast_vqa_m.py --workdir=/tmp/fast_vqa_m \
      --config.data.label_files.train=... --config.data.label_files.test=...

Differences from `configs/fast_vqa_b.py` (whose recipe and data fields it keeps; upstream also
trains M with batch 16, lr 1e-3 / backbone x0.1, wd 0.05, 30 epochs, warmup 2.5, `ema: true`):
4x4 fragments of 32 pixels (128x128), 16 frames at interval 2 (upstream `clip_len: 16`, 1 train /
4 test clips), and the backbone upstream builds as
`SwinTransformer3D(window_size=(4, 4, 4), frag_biases=[0, 0, 0, 0])`: window (4, 4, 4), no
fragment (GRPB) bias tables in any stage, and the reference's default adaptive window against
`base_x_size` (32, 224, 224). At the 16x128x128 input that window is rescaled to
(4*16//32, 4*128//224, 4*128//224) = (2, 2, 2) in every stage (index: the (2, 2, 2) sub-block of
the (4, 4, 4) relative table), and the shift (2, 2, 2) of odd blocks equals that window, which
leaves their windows (and so their output) as in unshifted blocks: upstream's behaviour, kept.
Assumption: upstream's `aligned: 8` (patch positions redrawn every 8 frames) is not modelled;
here positions are aligned over the whole 16-frame clip.
"""

from configs import fast_vqa_b

# The reference's `base_x_size`: the clip its windows are sized for.
REFERENCE_BASE_CLIP = (32, 224, 224)


def get_config():
  """The FAST-VQA-M configuration."""
  c = fast_vqa_b.get_config()
  c.sampling.clip_len = 16
  c.sampling.grid = 4
  c.sampling.patch = 32
  c.model.window_size = (4, 4, 4)
  c.model.frag_biases = (False, False, False, False)
  c.model.fragments_grid = 4  # Unused: no stage has a fragment table.
  c.model.base_x_size = REFERENCE_BASE_CLIP
  return c
