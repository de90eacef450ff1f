"""Per-host split of the element stream: each process reads its contiguous slice of every global batch.

Global batch k holds stream positions [k * B, (k + 1) * B). With P processes, process p reads the
b = B / P positions [k * B + p * b, k * B + (p + 1) * b) of it, so concatenating the hosts' local
batches in process order gives the global batch (which is how
`jax.make_array_from_process_local_data` assembles them on a data mesh ordered by process), every
host gets the same number of batches, and a single-host run reads exactly the same global batches.
"""

from collections.abc import Sequence

import numpy as np


def local_batch_size(global_batch: int, process_count: int) -> int:
  """B / P; raises unless the global batch splits evenly over the processes."""
  if process_count <= 0 or global_batch <= 0:
    raise ValueError(f"need a positive batch ({global_batch}) and process count ({process_count})")
  if global_batch % process_count:
    raise ValueError(f"global batch {global_batch} is not divisible by the {process_count} "
                     "processes")
  return global_batch // process_count


def host_positions(start_batch: int, end_batch: int, global_batch: int, process_index: int,
                   process_count: int) -> np.ndarray:
  """The stream positions process `process_index` reads for global batches [start, end), in order."""
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
  local = local_batch_size(global_batch, process_count)
  batches = np.arange(start_batch, end_batch, dtype=np.int64)[:, None]
  slots = process_index * local + np.arange(local, dtype=np.int64)[None, :]
  return (batches * global_batch + slots).reshape(-1)


def num_eval_batches(num_entries: int, global_batch: int) -> int:
  """Global evaluation batches covering `num_entries` videos (the last one padded)."""
  return -(-num_entries // global_batch)


def eval_positions(num_entries: int, global_batch: int, process_index: int,
                   process_count: int) -> np.ndarray:
  """This host's evaluation positions; position q is video q % N, valid when q < N."""
  return host_positions(0, num_eval_batches(num_entries, global_batch), global_batch,
                        process_index, process_count)


def gather_in_order(host_values: Sequence[np.ndarray], global_batch: int,
                    num_entries: int) -> np.ndarray:
  """Per-host values (hosts in process order, each in its stream order) -> the N videos' values."""
  local = local_batch_size(global_batch, len(host_values))
  per_batch = [np.asarray(v).reshape(-1, local, *np.shape(v)[1:]) for v in host_values]
  merged = np.concatenate(per_batch, axis=1)
  return merged.reshape(-1, *merged.shape[2:])[:num_entries]
