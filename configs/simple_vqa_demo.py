"""SimpleVQA-AWP demo: a tiny SimpleVQA on the embedded synthetic dataset, a few minutes on 2 CPUs.

  bash launch/simple_vqa_demo.sh            # features, then training (WORKDIR=... to choose)

which runs the two steps of the real recipe (configs/simple_vqa.py):

  python -m vqa_jax.simple_vqa_features --config=configs/simple_vqa_demo.py --out=MOTION_DIR
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

  c.model.update(dict(stage_sizes=(1, 1, 1, 1), width=8, hidden=32,
                      motion_dim=256 + 32))  # SlowFast width 8: slow 32 * 8, fast 32 * 8 / 8
  c.motion.update(dict(stage_sizes=(1, 1, 1, 1), width=8, head_pool=((1, 1, 1), (4, 1, 1)),
                       resize=32, chunk_len=8, min_chunks=8, batch_chunks=8))
  # short_side 64 is the frames' own short side: no resizing
  c.sampling.update(dict(clip_len=8, short_side=64, crop=56))
  c.train.update(dict(steps=400, batch_size=16, learning_rate=1e-3, lr_step_every=100,
                      lr_step_gamma=0.7, log_every=50, eval_every=0, checkpoint_every=200))
  c.eval.batch_size = 16
  c.perturb.update(dict(kind="awp", gamma=1e-3))
  return c
