"""Data-parallel layout: a 1-D device mesh named `data`, batches split on it, everything else replicated."""

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A ('data',) mesh over all (or the first `num_devices`) devices, with Auto axis types."""
  devices = jax.devices()[:num_devices] if num_devices else jax.devices()
  return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Full replication on every device of the mesh."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, other axes whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: jax.sharding.Mesh) -> None:
  """Raises unless the global batch splits evenly over the mesh's devices."""
  n = mesh.shape[DATA_AXIS]
  if global_batch % n:
    raise ValueError(f"global batch size {global_batch} is not divisible by the {n} devices of the "
                     f"'{DATA_AXIS}' mesh axis")


def shard_batch(batch: dict, mesh: jax.sharding.Mesh) -> dict:
  """Turns this process's batch into global jax.Arrays split on the batch axis.

  Arrays already on a device (NVDEC's clips, data/nvdec_pipeline.py) stay there on one process
  (`device_put` to the sharding); everything else goes through host memory.
  """
  sharding = batch_sharding(mesh)

  def place(v):
    if isinstance(v, jax.Array) and jax.process_count() == 1:
      return jax.device_put(v, sharding)
    return jax.make_array_from_process_local_data(sharding, np.asarray(v))

  return {k: place(v) for k, v in batch.items()}
