"""IQA demo: a small Swin (1-frame Video Swin) trained with AWP on synthetic images, no download.

  python -m vqa_jax.main --config=configs/iqa_demo.py --workdir=/tmp/iqa_demo

The run generates (once, cached under $VQA_JAX_CACHE or ~/.cache/vqa_jax) the
synthetic image set of `vqa_jax/data/synthetic/images.py`: the first frames of the synthetic
videos as 128x160 PNGs, 480 training and 128 test images of domain A and 96 of domain B ('cross'),
MOS 1-5 from the distortions (judder dropped). It then trains the IQA recipe's model shape
(`configs/iqa_swin_t.py`: temporal patch 1, window (1, w, w), no GRPB) shrunk to 2 stages, on 4x4
fragments of 16 px of one image, for 1500 AWP steps of 16 images, and evaluates on 'test' and
'cross'. Measured: SRCC 0.833 / PLCC 0.839 on 'test' and SRCC 0.696 on 'cross' (raw model) in
6 min 20 s wall on the 2-core CPU machine while it was shared (load ~8).

`--config=configs/iqa_demo.py:tiny` uses `ImageSpec.tiny()` (16 + 8 + 8 images of 64x80).
`data.synthetic_images` holds the spec's fields (base_config's are `ImageSpec()`, the demo set).
"""

from configs import demo
from configs import iqa_swin_t
from vqa_jax.config import config_base
from vqa_jax.config.specs import ImageSpec

PRESETS = {"demo": ImageSpec(), "tiny": ImageSpec.tiny()}


def get_config(preset: str = "demo"):
  """The IQA demo configuration on the synthetic image set `preset` (generated if missing)."""
  if preset not in PRESETS:
    raise ValueError(f"configs/iqa_demo.py:{preset}: the preset must be one of {sorted(PRESETS)}")
  spec = PRESETS[preset]
  c = config_base.base_config()
  c.data.source = "synthetic_images"  # generated on first use, cached under $VQA_JAX_CACHE
  c.data.synthetic_images = config_base.synthetic_config(spec)
  c.data.train_split = "train"
  c.data.eval_splits = ("test", "cross")

  iqa_swin_t.image_sampling(c)
  c.sampling.grid = 4
  c.sampling.patch = 16

  c.model = iqa_swin_t.iqa_swin_t_model()
  demo.small_swin(c.model)
  c.model.update(dict(window_size=(1, 4, 4), frag_biases=(False, False)))
  # warmup 30 steps; the cosine's length is train.steps (config_base)
  demo.from_scratch_awp(c, steps=1500, warmup_fraction=0.02)
  return c
