"""FAST-VQA-AWP (paper §1.2, §2): adversarial weight perturbation, gamma 1e-4.

  python -m vqa_jax.main --config=configs/paper/lsvq_fast_vqa_b_awp.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/lsvq_fast_vqa_b_awp

See configs/paper/common.py for the argument, the data layout and the choices made.
"""

from configs.paper import common


def get_config(arg: str = ""):
  """FAST-VQA-AWP."""
  return common.lsvq_config(arg, perturb_kind="awp")
