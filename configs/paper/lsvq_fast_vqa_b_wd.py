"""FAST-VQA-wd (paper §2): the baseline with weight decay 5e-4 instead of 0.05.

The paper's values are unknown (§12 Q5); 5e-4 is the one value the released code names (its
README's `--wd 0.0005`). Sweep others with --config.train.weight_decay=...

  python -m vqa_jax.main --config=configs/paper/lsvq_fast_vqa_b_wd.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/lsvq_fast_vqa_b_wd

See configs/paper/common.py for the argument, the data layout and the choices made.
"""

from configs.paper import common


def get_config(arg: str = ""):
  """FAST-VQA-wd."""
  c = common.lsvq_config(arg)
  c.train.weight_decay = 5e-4
  return c
