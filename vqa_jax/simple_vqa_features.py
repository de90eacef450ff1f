r"""Precomputes SimpleVQA's SlowFast motion features: `python -m vqa_jax.simple_vqa_features`.

  python -m vqa_jax.simple_vqa_features --config=configs/simple_vqa.py --out=/data/lsvq_motion \
      --config.data.label_files.train=LSVQ/labels_train.txt:/data/LSVQ \
      --config.motion.weights=SLOWFAST_8x8_R50.pyth
  vqa-jax features --config=configs/simple_vqa_demo.py --out=MOTION_DIR      # the same

Writes one float32 (chunks, 2304) .npy per video of every split of `config.data` and
`<out>/index.json` (`scoring/motion_features.py`: chunking, weights, layout); the config's data and
motion sections are used, and a rerun keeps the files already written. Train with
`--config.data.motion_dir=<out>`.
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from vqa_jax.runtime import entry_point
from vqa_jax.scoring import motion_features

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/simple_vqa.py).")
_OUT = flags.DEFINE_string("out", None, "Output folder for the .npy features and index.json.")
flags.mark_flags_as_required(["config", "out"])


def main(argv: list[str]) -> None:
  """Writes the motion features of --config's data into --out and says how many."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  os.makedirs(_OUT.value, exist_ok=True)
  index = motion_features.extract_features(_CONFIG.value, _OUT.value)
  print(f"wrote {len(index)} feature files and {motion_features.INDEX_FILE} to {_OUT.value}")


if __name__ == "__main__":
  entry_point.run(main)
