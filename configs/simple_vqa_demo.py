"""SimpleVQA-AWP demo: a tiny SimpleVQA on the embedded synthetic dataset, a few minutes on 2 CPUs.

  bash launch/simple_vqa_demo.sh            # features, then training (WORKDIR=... to choose)

which runs the two steps of the real recipe (configs/simple_vqa.py):

  python -m vqa_jax.families.simple_vqa_features --config=configs/simple_vqa_demo.py --out=MOTION_DIR
  python -m vqa_jax.main --config=configs/simple_vqa_demo.py --workdir=WORKDIR \
      --config.data.motion_dir=MOTION_DIR

The synthetic set is the demo one (480 + 128 + 96 videos of 64x80 pixels, 32 frames) at 4 fps, so
that every video lasts 8 s and gives SimpleVQA its 8 frames at 1 frame/s. The motion features come
from a tiny SlowFast with RANDOM weights (there is nothing to download; the command warns), so they
carry little more than frame statistics; the ResNet trunk is tiny and trained from scratch (stages
(1, 1, 1, 1), width 8), with a higher learning rate than the reference's 1e-5 fine-tuning rate.
"""

from configs import simple_vqa
from vqa_jax.config import config_base
from vqa_jax.config.specs import SyntheticSpec


def get_config():
  """The SimpleVQA demo configuration (data.motion_dir set by the launch script)."""
  c = simple_vqa.make_simple_vqa(config_base.base_config())
  c.data.synthetic = config_base.synthetic_config(SyntheticSpec(fps=4.0))

  c.model.stage_sizes = (1, 1, 1, 1)
  c.model.width = 8
  c.model.hidden = 32
  c.model.motion_dim = 256 + 32  # SlowFast width 8: slow 32 * 8, fast 32 * 8 / 8

  c.motion.stage_sizes = (1, 1, 1, 1)
  c.motion.width = 8
  c.motion.head_pool = ((1, 1, 1), (4, 1, 1))
  c.motion.resize = 32
  c.motion.chunk_len = 8
  c.motion.min_chunks = 8
  c.motion.batch_chunks = 8

  c.sampling.clip_len = 8
  c.sampling.short_side = 64  # the frames' own short side: no resizing
  c.sampling.crop = 56

  c.train.steps = 400
  c.train.batch_size = 16
  c.train.learning_rate = 1e-3
  c.train.lr_step_every = 100
  c.train.lr_step_gamma = 0.7
  c.train.log_every = 50
  c.train.eval_every = 0
  c.train.checkpoint_every = 200
  c.eval.batch_size = 16

  c.perturb.kind = "awp"
  c.perturb.gamma = 1e-3
  return c
