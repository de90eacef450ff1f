"""SAMA-AWP (paper §1.3, §6.2): FAST-VQA-B with SAMA's sampling and recipe, AWP 1e-4.

SAMA trains at batch 12 with drop_last (I = ⌊N / 12⌋). Its clean pass's sum-over-time score is
not modelled (configs/sama.py).

  python -m vqa_jax.main --config=configs/paper/sama_awp.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/sama_awp

See configs/paper/common.py for the argument, the data layout and the choices made.
"""

from configs.paper import common


def get_config(arg: str = ""):
  """SAMA-AWP."""
  c = common.lsvq_config(arg, perturb_kind="awp")
  c.sampling.method = "sama"
  c.sampling.sama_mask = "none"
  c.sampling.aligned = 0
  c.train.batch_size = 12
  common.set_epoch_schedule(c, int((1 - common.VAL_FRACTION) * common.LSVQ_TRAIN_VIDEOS),
                            drop_last=True)
  return c
