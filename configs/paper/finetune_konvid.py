"""Fine-tuning FAST-VQA-B on konvid (paper §7.6): seed-42 80/20 split,
10 linear-probe + 20 full epochs.

Start from an LSVQ run with --config.init.checkpoint=runs/lsvq_fast_vqa_b_awp/best (its selected
checkpoint) or .../lsvq_fast_vqa_b_awp (its last). --config.perturb.kind=awp fine-tunes with AWP;
--config.finetune.seeds='(0,1,2,3,4,5,6,7,8,9)' gives ten splits and their
mean ± std.

  python -m vqa_jax.finetune --config=configs/paper/finetune_konvid.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/finetune_konvid

See configs/paper/common.py for the argument, the data layout and the choices made.
"""

from configs.paper import common


def get_config(arg: str = ""):
  """Fine-tuning on konvid."""
  c = common.finetune_config(arg, "konvid")
  return c
