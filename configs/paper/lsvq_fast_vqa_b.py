"""FAST-VQA-B baseline on LSVQ (paper §2 first row): AdamW wd 0.05, no perturbation.

  python -m vqa_jax.main --config=configs/paper/lsvq_fast_vqa_b.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/lsvq_fast_vqa_b

See configs/paper/common.py for the argument, the data layout and the choices made.
"""

from configs.paper import common


def get_config(arg: str = ""):
  """The FAST-VQA baseline."""
  c = common.lsvq_config(arg)
  return c
