"""Per-device memory figures of a compiled step (vqa_jax/runtime/memory_report.py)."""

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.runtime import memory_report
from vqa_jax.runtime import sharding
from vqa_jax.training import train_step


def test_bytes_per_device_counts_each_devices_shard():
  mesh = sharding.make_mesh()  # 8 simulated devices
  batch = jax.device_put(np.zeros((16, 10), np.float32), sharding.batch_sharding(mesh))
  params = jax.device_put(np.zeros((3, 5), np.float32), sharding.replicated(mesh))
  assert memory_report.bytes_per_device(batch) == 2 * 10 * 4  # 16 rows over 8 devices
  assert memory_report.bytes_per_device(params) == 3 * 5 * 4  # whole copy everywhere
  assert memory_report.bytes_per_device({"a": params, "b": batch}) == 60 + 80


def test_compile_with_memory_reports_xla_arguments_and_runs():
  mesh = sharding.make_mesh()
  x = jax.device_put(np.ones((8, 256), np.float32), sharding.batch_sharding(mesh))
  w = jax.device_put(np.ones((256, 4), np.float32), sharding.replicated(mesh))
  fn = jax.jit(lambda x, w: jnp.tanh(x @ w).sum())
  compiled, report = memory_report.compile_with_memory(fn, x, w)
  assert float(compiled(x, w)) == float(fn(x, w))
  assert report["arguments"] == 1 * 256 * 4 + 256 * 4 * 4  # one row of x and all of w per device


def test_state_breakdown_names_the_train_state_fields():
  params = {"w": jnp.zeros((4, 4)), "b": jnp.zeros((4,))}
  import optax  # pylint: disable=g-import-not-at-top
  state = train_step.create_train_state(params, optax.adam(1e-3))
  parts = memory_report.state_breakdown(state, {"video": jnp.zeros((2, 3), jnp.uint8)})
  assert parts["params"] == 20 * 4
  assert parts["ema_params"] == 20 * 4
  assert parts["opt_state"] == 2 * 20 * 4 + 4  # adam mu, nu and an int32 count
  assert parts["batch"] == 6


def test_format_bytes_and_report():
  assert memory_report.format_bytes(512) == "512 B"
  assert memory_report.format_bytes(1536) == "1.5 KiB"
  assert memory_report.format_bytes(3 * 2**30) == "3.0 GiB"
  line = memory_report.format_report({"params": 2048, "perturb_state": 0},
                                     {"arguments": 4096, "outputs": 10, "temporaries": 2**20,
                                      "aliased": 0, "code": 1})
  assert "params 2.0 KiB" in line and "perturb_state" not in line
  assert "temporaries (activations, gradients) 1.0 MiB" in line
