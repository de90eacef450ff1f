"""Trains and evaluates a model: `python -m vqa_jax.main --config=NAME_OR_FILE --workdir=DIR`.

  python -m vqa_jax.main --config=smoke --workdir=/tmp/run [--config.train.steps=100 ...]
  vqa-jax train --config=fast_vqa_b --workdir=runs/b        # the same, as a console script

--config names a shipped config (smoke, demo, fast_vqa_b, paper/NAME:ARGS, ...) or a config file;
--config.FIELD=VALUE overrides one of its fields. Checkpoints, metrics, results and the config
(DIR/config.yaml, .json, .txt) go to DIR; rerunning a command on the same DIR resumes the run.
--print_config shows the resolved config and exits.

Exit status: 0 the run finished; 1 an error (named on the last line); 2 a flag value to fix (an
unknown config name or field, a workdir that is a file or cannot be written; one line and a hint);
75 SIGTERM / SIGINT stopped the run after saving a checkpoint (rerun the same command to resume).
"""

# Thin on purpose: jax and the trainer are imported inside `main`, so the grain loader's spawned
# worker processes, which re-import this module, start without them.

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging
from ml_collections import config_flags

from vqa_jax.config import run_config
from vqa_jax.runtime import entry_point
from vqa_jax.runtime import output_folders
from vqa_jax.training import interrupts
from vqa_jax.data import video_io

_CONFIG = config_flags.DEFINE_config_file("config", None, "A shipped config's name (fast_vqa_b, "
                                          "smoke, paper/NAME:ARGS, ...) or a config file's path.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and results go here; an "
                               "existing run in it is resumed.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator", None, "Multi-process runs: host:port of process 0 (default $VQA_JAX_COORDINATOR). "
    "Not needed on TPU pods, SLURM or Open MPI, which JAX detects.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes "
                                      "(default $VQA_JAX_NUM_PROCESSES or 1).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's id "
                                   "(default $VQA_JAX_PROCESS_ID or 0).")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir whose stored config (config.json) differs from "
    "this one in fields that do not change the state's shapes (learning rate, perturbation, data, "
    "...); the differences are logged and recorded in config_changes.jsonl.")
flags.mark_flags_as_required(["config", "workdir"])


def process_spec():
  """The multi-process spec (`distributed.ProcessSpec`): flags where given, else VQA_JAX_* env."""
  from vqa_jax.runtime import distributed  # pylint: disable=g-import-not-at-top  (see the docstring)
  env = distributed.ProcessSpec.from_env()
  return distributed.ProcessSpec(
      coordinator=_COORDINATOR.value or env.coordinator,
      num_processes=env.num_processes if _NUM_PROCESSES.value is None else _NUM_PROCESSES.value,
      process_id=env.process_id if _PROCESS_ID.value is None else _PROCESS_ID.value)


def config_file_problem() -> str:
  """Why the --config file cannot be loaded ('' when it exists): named before anything runs."""
  spec = config_flags.get_config_filename(flags.FLAGS["config"])
  path = spec.split(":", 1)[0]  # 'FILE.py:ARGS' passes ARGS to get_config
  problem = video_io.file_problem(path)
  return f"--config={spec}: {path}: {problem}" if problem else ""


def main(argv):
  """Runs training and evaluation for the flags' config."""
  if len(argv) > 1:
    raise entry_point.UsageProblem(f"unexpected arguments: {argv[1:]}")
  problem = config_file_problem()
  if problem:
    sys.exit(problem)  # printed alone, last; exit status 1
  problem = output_folders.problem(_WORKDIR.value)  # before the model is built
  if problem:
    raise entry_point.UsageProblem(f"--workdir={_WORKDIR.value}: {problem}")
  # pylint: disable=g-import-not-at-top  (see the note above the imports)
  from vqa_jax.runtime import distributed
  from vqa_jax.training import trainer
  # pylint: enable=g-import-not-at-top
  distributed.initialize(process_spec())
  if not distributed.is_primary():
    logging.set_verbosity(logging.WARNING)  # process 0 alone reports progress
  if logging.get_verbosity() >= 1:  # quiet by default: the workdir's config.yaml is the record
    logging.info("config:\n%s", _CONFIG.value)
  logging.info("config: %s (--print_config shows it)",
               os.path.join(_WORKDIR.value, run_config.CONFIG_YAML))
  try:
    trainer.train(_CONFIG.value, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)
  except interrupts.Interrupted as e:
    logging.warning("%s; rerun the same command to resume (exit status %d)", e,
                    interrupts.EXIT_INTERRUPTED)
    sys.exit(interrupts.EXIT_INTERRUPTED)


if __name__ == "__main__":
  entry_point.run(main)  # config names, --print_config, library INFO lines dropped
