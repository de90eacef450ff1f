"""Multi-process start-up: `jax.distributed.initialize` when launched as several processes.

A run is multi-process when `--num_processes` > 1 is given, or when the environment is a cluster
that JAX detects by itself (Cloud TPU pod workers, SLURM with several tasks, Open MPI). On one
host with nothing set, `initialize` does nothing, so the same command runs everywhere.

Flags may come from the environment instead (handy for launchers):
`VQA_JAX_COORDINATOR` (host:port of process 0), `VQA_JAX_NUM_PROCESSES`, `VQA_JAX_PROCESS_ID`;
`VQA_JAX_AUTO_DISTRIBUTED=1` asks for JAX's own cluster detection (TPU pod slices, whose workers
find each other through the TPU metadata; SLURM; Open MPI) even where no marker variable is set.
"""

import dataclasses
import os

from absl import logging
import jax

ENV_COORDINATOR = "VQA_JAX_COORDINATOR"
ENV_NUM_PROCESSES = "VQA_JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "VQA_JAX_PROCESS_ID"
ENV_AUTO = "VQA_JAX_AUTO_DISTRIBUTED"
# Environment variables by which JAX recognises a cluster it can join without arguments.
_CLUSTER_MARKERS = ("TPU_WORKER_HOSTNAMES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
  """Who this process is: the coordinator's address, the process count and this process's id."""
  coordinator: str | None = None
  num_processes: int = 1
  process_id: int = 0

  @classmethod
  def from_env(cls, environ=None) -> "ProcessSpec":
    """The spec given by the VQA_JAX_* environment variables (one process when they are unset)."""
    env = os.environ if environ is None else environ
    return cls(coordinator=env.get(ENV_COORDINATOR) or None,
               num_processes=int(env.get(ENV_NUM_PROCESSES, "1")),
               process_id=int(env.get(ENV_PROCESS_ID, "0")))

  def validate(self) -> None:
    """Raises ValueError for an inconsistent spec."""
    if self.num_processes < 1:
      raise ValueError(f"num_processes must be >= 1, got {self.num_processes}")
    if not 0 <= self.process_id < self.num_processes:
      raise ValueError(f"process_id {self.process_id} is not in [0, {self.num_processes})")
    if self.num_processes > 1 and not self.coordinator:
      raise ValueError(f"{self.num_processes} processes need a coordinator address (host:port of "
                       f"process 0), e.g. --coordinator=127.0.0.1:12345 or ${ENV_COORDINATOR}")


def in_detected_cluster(environ=None) -> bool:
  """True when the environment is a multi-process cluster JAX can join by auto-detection."""
  env = os.environ if environ is None else environ
  if env.get(ENV_AUTO, "0") not in ("", "0"):
    return True
  if "TPU_WORKER_HOSTNAMES" in env:
    return "," in env["TPU_WORKER_HOSTNAMES"]
  return any(int(env.get(k, "1") or "1") > 1 for k in _CLUSTER_MARKERS[1:])


def initialize(spec: ProcessSpec | None = None) -> bool:
  """Joins the multi-process runtime if this is a multi-process launch; returns whether it did.

  Must run before any JAX computation. CPU processes exchange data through gloo collectives.
  """
  spec = ProcessSpec.from_env() if spec is None else spec
  spec.validate()
  if spec.num_processes > 1:
    # Only the CPU backend uses this; GPU and TPU processes use NCCL / ICI regardless.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=spec.coordinator,
                               num_processes=spec.num_processes, process_id=spec.process_id)
  elif in_detected_cluster():
    jax.distributed.initialize()
  else:
    return False
  logging.info("process %d of %d; %d local of %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True


def is_primary() -> bool:
  """True on process 0, which alone writes logs, metric files and reports."""
  return jax.process_index() == 0
