"""Entry point: `python -m vqa_jax.main --config=configs/demo.py --workdir=DIR [--config.x=y ...]`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
from ml_collections import config_flags

from vqa_jax import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to an ml_collections config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and results go here; an "
                               "existing run in it is resumed.")
flags.mark_flags_as_required(["config", "workdir"])


class _DropLibraryInfo(logging.logging.Filter):
  """Drops INFO records from orbax, whose per-save chatter buries the training progress."""

  def filter(self, record):
    return record.levelno > logging.logging.INFO or "orbax" not in record.pathname


def main(argv):
  """Runs training and evaluation for the flags' config."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_DropLibraryInfo())
  logging.info("config:\n%s", _CONFIG.value)
  try:
    trainer.train(_CONFIG.value, _WORKDIR.value)
  except trainer.Interrupted as e:
    logging.warning("%s; rerun the same command to resume", e)


if __name__ == "__main__":
  app.run(main)
