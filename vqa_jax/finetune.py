"""Fine-tuning protocol (paper §7.6): random train/test splits, linear probe, then full fine-tuning.

  python -m vqa_jax.finetune --config=configs/paper/finetune_konvid.py:LABELS_DIR,VIDEOS_DIR \
      --workdir=runs/ft_konvid --config.init.checkpoint=runs/lsvq_awp/best

For every seed of `finetune.seeds` the labelled split `finetune.dataset` is shuffled with
random.Random(seed) and cut into the first ⌊train_fraction·N⌋ videos for training and the rest for
testing (seed 42 reproduces the reference's split). Each split trains in `<workdir>/seed_<seed>/`
(a normal trainer workdir: resumable, with its own logs), with `seed` also as the run's seed,
starting from `init.checkpoint`: `finetune.probe_epochs` epochs with the backbone frozen, then full
fine-tuning up to `finetune.epochs`, with the perturbation of `perturb` (kind 'none' is the
reference, which has no AWP in fine-tuning). Prints each split's tables, then the mean ± std (sample
std, ddof 1; 0 for one split) over splits of the final and, with a validation split, the selected
checkpoint's test metrics, and writes them to `<workdir>/finetune_summary.json`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from ml_collections import config_flags

from vqa_jax.runtime import entry_point
from vqa_jax.training import finetune

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config (a shipped name or a file); "
                                          "default: the one stored in --workdir by an earlier "
                                          "run.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "One subfolder per split seed goes here.")
flags.mark_flags_as_required(["workdir"])

chosen_config = entry_point.config_or_stored(_CONFIG, lambda: _WORKDIR.value, flag="workdir")


def main(argv):
  """Runs the fine-tuning protocol of the chosen config in --workdir."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  finetune.finetune(chosen_config(), _WORKDIR.value)


if __name__ == "__main__":
  entry_point.run(main, chosen_config)
