"""SimpleVQA-AWP (paper §1.3, §6.3): SimpleVQA trained on LSVQ with AWP gamma 1e-4.

The argument adds the motion-feature folder: "LABELS_DIR,VIDEOS_DIR[,MOTION_DIR]" (MOTION_DIR
defaults to VIDEOS_DIR/simplevqa_motion). Features once (every split of the config), then training:

  python -m vqa_jax.simple_vqa_features \
      --config=configs/paper/lsvq_simple_vqa_awp.py:LABELS_DIR,VIDEOS_DIR,MOTION_DIR \
      --out=MOTION_DIR --config.motion.weights=SLOWFAST_8x8_R50.pyth
  python -m vqa_jax.main --config=configs/paper/lsvq_simple_vqa_awp.py:LABELS_DIR,VIDEOS_DIR,MOTION_DIR \
      --workdir=runs/lsvq_simple_vqa_awp --config.init.checkpoint=SIMPLE_VQA_INIT

SIMPLE_VQA_INIT: ImageNet ResNet-50 converted by `python -m vqa_jax.convert_weights
--format=resnet50 --src=resnet50-19c8e357.pth --dst=SIMPLE_VQA_INIT` (configs/simple_vqa.py).
The recipe is configs/simple_vqa.py's (upstream SimpleVQA: 10 epochs of batch 8, Adam 1e-5 with
coupled L2 1e-7, StepLR every 2 epochs x0.95, no EMA); the data protocol is configs/paper/common.py's
(5% of LSVQ-train held out for model selection, evaluation every epoch on it and on every
cross-dataset test). Upstream selects on LSVQ-test SRCC instead.
`--config.perturb.kind=none` gives the SimpleVQA baseline.
"""

from configs import simple_vqa
from configs.paper import common


def parse_arg(arg: str) -> tuple[str, str]:
  """("LABELS_DIR,VIDEOS_DIR" for common, MOTION_DIR) from "LABELS_DIR,VIDEOS_DIR[,MOTION_DIR]"."""
  parts = (arg or "labels,videos").split(",")
  if len(parts) not in (2, 3):
    raise ValueError(f"config argument must be 'LABELS_DIR,VIDEOS_DIR[,MOTION_DIR]', got {arg!r}")
  motion_dir = parts[2] if len(parts) == 3 else f"{parts[1]}/simplevqa_motion"
  return ",".join(parts[:2]), motion_dir


def get_config(arg: str = ""):
  """SimpleVQA-AWP on LSVQ, tested on every cross-dataset set."""
  dirs, motion_dir = parse_arg(arg)
  c = simple_vqa.make_simple_vqa(common.lsvq_config(dirs))
  c.data.motion_dir = motion_dir
  simple_vqa.set_epochs(c, int((1 - common.VAL_FRACTION) * common.LSVQ_TRAIN_VIDEOS))
  c.perturb.kind = "awp"
  c.perturb.gamma = common.GAMMA
  return c
