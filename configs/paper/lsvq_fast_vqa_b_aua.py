"""FAST-VQA-AuA (paper §2): ImageNet AutoAugment on each whole training clip before fragments.

  python -m vqa_jax.main --config=configs/paper/lsvq_fast_vqa_b_aua.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/lsvq_fast_vqa_b_aua

See configs/paper/common.py for the argument, the data layout and the choices made.
"""

from configs.paper import common


def get_config(arg: str = ""):
  """FAST-VQA-AuA."""
  c = common.lsvq_config(arg)
  c.data.augment = "autoaugment"
  return c
