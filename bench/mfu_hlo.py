"""Op counts of the train step's HLO: converts, gathers and scatters.

Usage (from the repository root):
  PYTHONPATH=. python3 bench/mfu_hlo.py [--config=configs/smoke.py] \
      [--config.model.dtype=bfloat16] [--config.model.depths="(2,2)"]

Builds the run's step as the trainer does (`trainer.make_step_fn`), lowers it for the config's
batch and compiles it for this machine's backend, then counts HLO instructions by opcode in the
lowered (StableHLO) text and in XLA's optimised HLO. On the CPU the optimised count is a fair proxy
for the dtype converts the GPU runs as `loop_convert_fusion` kernels.
"""

import collections
import json
import re

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from bench import step_setup

_CONFIG = config_flags.DEFINE_config_file("config", "configs/smoke.py", "Config file.")
COUNTED_OPS = ("convert", "gather", "scatter", "transpose", "dot", "dot_general",
               "custom-call")
# An HLO instruction: `name = type opcode(` (optimised text) or `stablehlo.opcode` (lowered).
_HLO_OPCODE = re.compile(r"=\s*\S+\s+([a-z][a-z0-9-]*)\(")
_STABLEHLO_OPCODE = re.compile(r"stablehlo\.([a-z_]+)")


def lowered_step(config):
  """The config's jitted train step, lowered for one random batch (jax `Lowered`)."""
  step, _, state, batch, rng = step_setup.step_setup(config)
  return step.lower(state, batch, rng)


def opcode_counts(hlo_text: str) -> dict:
  """{opcode: count} of an optimised HLO module's text (fused computations included)."""
  return dict(collections.Counter(_HLO_OPCODE.findall(hlo_text)))


def stablehlo_counts(mlir_text: str) -> dict:
  """{op: count} of a lowered StableHLO module's text (`stablehlo.gather` counts as 'gather')."""
  return dict(collections.Counter(_STABLEHLO_OPCODE.findall(mlir_text)))


def step_op_counts(config) -> dict:
  """Counts of COUNTED_OPS in the step's lowered and optimised HLO."""
  lowered = lowered_step(config)
  lowered_counts = stablehlo_counts(lowered.as_text())
  optimised_counts = opcode_counts(lowered.compile().as_text())
  return {"lowered": {op: lowered_counts.get(op.replace("-", "_"), 0) for op in COUNTED_OPS},
          "optimised": {op: optimised_counts.get(op, 0) for op in COUNTED_OPS},
          "backend": jax.default_backend()}


def main(argv):
  """Prints the counts as one JSON line."""
  del argv
  print(json.dumps(step_op_counts(_CONFIG.value)), flush=True)


if __name__ == "__main__":
  app.run(main)
