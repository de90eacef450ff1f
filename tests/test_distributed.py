"""Multi-process start-up decisions (vqa_jax/runtime/distributed.py); the 2-process runs are in test_multihost."""

import pytest

from vqa_jax.runtime import distributed


def test_spec_from_env_defaults_to_one_process():
  spec = distributed.ProcessSpec.from_env({})
  assert spec == distributed.ProcessSpec(None, 1, 0)
  spec.validate()


def test_spec_from_env_reads_the_launcher_variables():
  env = {"VQA_JAX_COORDINATOR": "10.0.0.1:1234", "VQA_JAX_NUM_PROCESSES": "4",
         "VQA_JAX_PROCESS_ID": "3"}
  assert distributed.ProcessSpec.from_env(env) == distributed.ProcessSpec("10.0.0.1:1234", 4, 3)


@pytest.mark.parametrize("spec, message", [
    (distributed.ProcessSpec("h:1", 2, 2), "process_id 2 is not in"),
    (distributed.ProcessSpec(None, 2, 0), "coordinator address"),
    (distributed.ProcessSpec("h:1", 0, 0), "num_processes must be >= 1"),
])
def test_inconsistent_specs_are_rejected(spec, message):
  with pytest.raises(ValueError, match=message):
    spec.validate()


@pytest.mark.parametrize("env, expected", [
    ({}, False),
    ({"SLURM_NTASKS": "1"}, False),
    ({"SLURM_NTASKS": "8"}, True),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, True),
    ({"TPU_WORKER_HOSTNAMES": "t1v-n-0"}, False),
    ({"TPU_WORKER_HOSTNAMES": "t1v-n-0,t1v-n-1"}, True),
    ({"VQA_JAX_AUTO_DISTRIBUTED": "1"}, True),
    ({"VQA_JAX_AUTO_DISTRIBUTED": "0", "SLURM_NTASKS": "1"}, False),
])
def test_cluster_detection(env, expected):
  assert distributed.in_detected_cluster(env) is expected


def test_single_process_initialize_is_a_no_op(monkeypatch):
  for name in ("TPU_WORKER_HOSTNAMES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE",
               "VQA_JAX_AUTO_DISTRIBUTED"):
    monkeypatch.delenv(name, raising=False)
  assert distributed.initialize(distributed.ProcessSpec()) is False
  assert distributed.is_primary()
