"""FasterVQA: FAST-VQA-B on spatio-temporal fragments (upstream `options/fast/f3dvqa-b.yml`).

  python -m vqa_jax.main --config=configs/faster_vqa.py --workdir=/tmp/faster_vqa \
      --config.data.label_files.train=... --config.data.label_files.test=...

Upstream option values (VQAssessment/FAST-VQA-and-FasterVQA @ 9f264e4, f3dvqa-b.yml), for the
train set and every validation set alike:
  fragments_h: 7, fragments_w: 7, fsize_h: 32, fsize_w: 32, aligned: 8, clip_len: 32,
  frame_interval: 2, t_frag: 8, num_clips: 1 (train and test)
  batch_size 16, num_epochs 30, warmup_epochs 2.5, lr 1e-3, backbone_lr_mult 0.1, wd 0.05, ema,
  model DiViDeAddEvaluator / swin_tiny_grpb / VQAHead(768, 64), Kinetics-400 Video Swin-T init.

`FusionDataset` turns t_frag into `FragmentSampleFrames(clip_len // t_frag = 4, t_frag = 8,
frame_interval = 2, num_clips = 1)`: the video is split into 8 segments and each gives 4 frames at
interval 2 (random offset in the segment), wrapping around short videos. The spatial fragments
(`get_spatial_fragments`, aligned = 8) share patch positions within each chunk of 8 frames, i.e.
two temporal segments. Here: `sampling.method = 'fragments_t'` with those values (see
`vqa_jax/data/sampling/fragments.py`); evaluation uses centred offsets unless
`sampling.eval_offsets` is 'random'. The model and the training recipe are FAST-VQA-B's (`configs/fast_vqa_b.py`).
"""

from configs import fast_vqa_b

TEMPORAL_SEGMENTS = 8  # t_frag
FRAMES_PER_SEGMENT = 4  # clip_len // t_frag
ALIGNED = 8  # frames sharing patch positions


def get_config():
  """The FasterVQA configuration."""
  c = fast_vqa_b.get_config()
  c.sampling.method = "fragments_t"
  c.sampling.clip_len = TEMPORAL_SEGMENTS * FRAMES_PER_SEGMENT
  c.sampling.t_frag = TEMPORAL_SEGMENTS
  c.sampling.aligned = ALIGNED
  c.sampling.frame_interval = 2
  c.sampling.grid = 7
  c.sampling.patch = 32
  c.sampling.num_clips_train = 1
  c.sampling.num_clips_eval = 1
  return c
