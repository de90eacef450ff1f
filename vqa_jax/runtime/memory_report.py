"""The compiled train step's per-device memory footprint, printed before step 1.

XLA's `memory_analysis()` gives the bytes of a compiled program's arguments, outputs and
temporaries on one device; the argument bytes are split here into the train state's parts (params,
optimizer state, EMA params, perturbation state) and the batch from the arrays' own shardings.
Temporaries are the activations and gradients live during the step.
"""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

PyTree = Any


def bytes_per_device(tree: PyTree) -> int:
  """Bytes one device holds of `tree` (jax.Arrays or ShapeDtypeStructs with shardings)."""
  total = 0
  for leaf in jax.tree_util.tree_leaves(tree):
    shape = leaf.shape
    leaf_sharding = getattr(leaf, "sharding", None)
    if leaf_sharding is not None:
      shape = leaf_sharding.shard_shape(shape)
    total += int(np.prod(shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
  return total


def compile_with_memory(jitted, *args) -> tuple[Any, dict[str, int]]:
  """Compiles `jitted` for `args`; returns (compiled callable, per-device bytes by category)."""
  compiled = jitted.lower(*args).compile()
  analysis = compiled.memory_analysis()
  report = {}
  if analysis is not None:
    report = {"arguments": int(analysis.argument_size_in_bytes),
              "outputs": int(analysis.output_size_in_bytes),
              "temporaries": int(analysis.temp_size_in_bytes),
              "aliased": int(analysis.alias_size_in_bytes),
              "code": int(analysis.generated_code_size_in_bytes)}
  return compiled, report


def state_breakdown(state: PyTree, batch: PyTree) -> dict[str, int]:
  """Per-device bytes of the train state's fields (a dataclass / flax struct) and of the batch."""
  parts = {}
  fields = getattr(state, "__dataclass_fields__", None)
  if fields:
    for name in fields:
      parts[name] = bytes_per_device(getattr(state, name))
  else:
    parts["state"] = bytes_per_device(state)
  parts["batch"] = bytes_per_device(batch)
  return parts


def format_bytes(n: int) -> str:
  """1536 -> '1.5 KiB'."""
  value = float(n)
  for unit in ("B", "KiB", "MiB", "GiB"):
    if value < 1024 or unit == "GiB":
      return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
    value /= 1024
  raise AssertionError("unreachable")


def format_report(parts: Mapping[str, int], compiled: Mapping[str, int]) -> str:
  """One line: the state/batch parts, then XLA's argument / output / temporary totals per device."""
  items = [f"{k} {format_bytes(v)}" for k, v in parts.items() if v]
  if compiled:
    items += [f"XLA arguments {format_bytes(compiled['arguments'])}",
              f"outputs {format_bytes(compiled['outputs'])} ({format_bytes(compiled['aliased'])} "
              "donated)",
              f"temporaries (activations, gradients) {format_bytes(compiled['temporaries'])}"]
  return "per-device memory of the train step: " + ", ".join(items)
