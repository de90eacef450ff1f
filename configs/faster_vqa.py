"""FasterVQA (FAST-VQA-B on space-time fragments; upstream `options/fast/f3dvqa-b.yml`).

  python -m vqa_jax.main --config=configs/faster_vqa.py --workdir=/tmp/faster_vqa \
      --config.data.label_files.train=... --config.data.label_files.test=...

Upstream samples 7x7 fragments of 32 pixels on 32 frames made of `t_frag` = 8 temporal segments
of 4 consecutive frames at interval 2 (`clip_len: 32`, `t_frag: 8`, `aligned: 4`), with 1 clip
for training and for testing, and the FAST-VQA-B model and recipe (`configs/fast_vqa_b.py`).

Assumptions (stated because this port does not model them yet): `data/sampling.py` has no
temporal-fragment mode, so this config samples one 32-frame clip at interval 2 (the FAST-VQA-B
temporal sampler) and aligns patch positions over the whole clip instead of per 4-frame segment.
The model input shape (32, 224, 224) and the parameter tree are exactly upstream's, so converted
FasterVQA weights load; scores differ from upstream only through the sampling.
"""

from configs import fast_vqa_b

TEMPORAL_SEGMENTS = 8
FRAMES_PER_SEGMENT = 4


def get_config():
  """The FasterVQA configuration."""
  c = fast_vqa_b.get_config()
  c.sampling.clip_len = TEMPORAL_SEGMENTS * FRAMES_PER_SEGMENT
  c.sampling.frame_interval = 2
  c.sampling.num_clips_train = 1
  c.sampling.num_clips_eval = 1
  return c
