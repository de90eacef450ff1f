"""Radius sweeps in one program: K models trained at once by vmapping the step over stacked states.

One program per perturbation kind: the members of a kind differ in their radius only and train
together; with several --kinds the kinds' populations train one after another.

  python -m vqa_jax.sweep --config=configs/demo.py --gammas=0,1e-4,5e-4,1e-3 --workdir=DIR
  python -m vqa_jax.sweep --config=configs/demo.py --kinds=awp,rwp --gammas=1e-3 --workdir=DIR

Members are every (kind, radius) of --kinds x --gammas; the radius is gamma for awp/rwp and rho for
sam/asam. All members start from the config's initial state and see the same batches and dropout
keys, so member i follows the single run `python -m vqa_jax.main` with its kind and radius to float
rounding (AdamW amplifies that rounding on leaves whose gradient is zero in exact arithmetic, such
as the head's last bias under the shift-invariant loss). Prints one row per member with the final
train loss and the SRCC/PLCC of the train split and of every eval split (in-domain test,
cross-domain), then one JSON line with all results. Writes `<workdir>/metrics.jsonl` (per-member
training scalars) and `<workdir>/sweep.jsonl`. No checkpoints, no resume.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from ml_collections import config_flags

from vqa_jax.runtime import entry_point
from vqa_jax.training import sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to an ml_collections config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Metrics and results go here.")
_GAMMAS = flags.DEFINE_list("gammas", None, "Radii to sweep (gamma for awp/rwp, rho for sam/asam).")
_KINDS = flags.DEFINE_list("kinds", None, "Perturbation kinds to sweep (default: "
                           "config.perturb.kind).")
_EVAL_MODEL = flags.DEFINE_enum("eval_model", "raw", ["raw", "ema"], "Model whose metrics the "
                                "table shows (the JSON line has all of config.eval.models).")
flags.mark_flags_as_required(["config", "workdir", "gammas"])


def main(argv):
  """Trains the sweep's members of the flags' config, kinds and radii."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  members = sweep.config_members(_CONFIG.value, _KINDS.value, [float(g) for g in _GAMMAS.value])
  sweep.run(_CONFIG.value, members, _WORKDIR.value, _EVAL_MODEL.value)


if __name__ == "__main__":
  entry_point.run(main)
