"""The issue-30 device check's parts on the CPU: nominal FLOPs, candidates, the step's HLO."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench import mfu_check
from bench import mfu_hlo
from configs import smoke
from vqa_jax.config import validation

# Optimised-HLO `convert` count of the smoke model's bf16 AWP step with a shifted block (below) on
# the CPU over the tests' 8 simulated devices (conftest). Before issue 30: 2438 (gathers 6,
# scatters 12); after: 2418 (none). Recorded with
#   XLA_FLAGS=--xla_force_host_platform_device_count=8 PYTHONPATH=. python3 bench/mfu_hlo.py \
#       --config=configs/smoke.py --config.model.dtype=bfloat16 --config.model.depths="(2,2)"
# (one device: 2068 before, 2064 after).
BF16_STEP_CONVERTS_MAX = 2418


def _small_step_config(dtype: str):
  config = smoke.get_config()
  config.model.depths = (2, 2)  # each stage has a shifted block
  config.model.dtype = dtype
  return config


def test_nominal_flops_count_products_by_hand():
  """2 x multiply-adds: a (4, 8) @ (8, 16) product inside a jit, a 3x3 conv 2 -> 5 channels."""
  x, w = jnp.ones((4, 8)), jnp.ones((8, 16))
  img, kernel = jnp.ones((1, 6, 6, 2)), jnp.ones((3, 3, 2, 5))

  def fn(x, w, img, kernel):
    conv = jax.lax.conv_general_dilated(img, kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.jit(lambda a, b: jnp.tanh(a @ b))(x, w).sum() + conv.sum()

  expected = 2 * 4 * 16 * 8 + 2 * (4 * 4 * 5) * (3 * 3 * 2)
  assert mfu_check.nominal_forward_flops(fn, x, w, img, kernel) == expected


def test_candidates_cover_attention_remat_batch_and_precision():
  cands = mfu_check.candidates(tiny=False)
  assert {c.batch for c in cands} == {16, 32, 64}
  assert {c.remat for c in cands} == {"none", "block", "dots_saveable"}
  assert {c.attention for c in cands} == {"auto", "xla"}
  assert {c.kind for c in cands} == {"awp", "none"}
  assert {c.precision for c in cands} == {"auto", "split", "cast"}
  assert cands[0] == mfu_check.Candidate("awp", 16)  # the baseline first


@pytest.mark.parametrize("remat, flag, policy", [("none", False, ""), ("block", True, ""),
                                                 ("dots_saveable", True, "dots_saveable")])
def test_configure_sets_a_valid_config(remat, flag, policy):
  config = mfu_check.configure(smoke.get_config(),
                               mfu_check.Candidate("none", 4, remat, "xla", "bfloat16", "split"))
  validation.validate(config)
  assert (config.model.remat, config.model.remat_policy, config.model.attention) == (
      flag, policy, "xla")
  assert config.train.batch_size == 4 * jax.device_count()
  assert (config.perturb.kind, config.perturb.precision, config.model.dtype) == (
      "none", "split", "bfloat16")


def test_step_hlo_has_no_gather_or_scatter():
  """Windows, shifts and the position bias are reshapes, transposes, rolls and dots."""
  text = mfu_hlo.lowered_step(_small_step_config("float32")).as_text()
  counts = mfu_hlo.stablehlo_counts(text)
  assert counts.get("dot_general", 0) > 0  # the counter reads this text
  assert counts.get("gather", 0) == 0 and counts.get("scatter", 0) == 0, counts


@pytest.mark.integration
def test_bf16_step_convert_count_is_pinned():
  counts = mfu_hlo.step_op_counts(_small_step_config("bfloat16"))
  assert counts["optimised"]["gather"] == counts["optimised"]["scatter"] == 0
  assert 0 < counts["optimised"]["convert"] <= BF16_STEP_CONVERTS_MAX, counts


def test_opcode_counters_read_hlo_text():
  hlo = ("ENTRY %main (p: f32[2]) -> bf16[2] {\n  %p = f32[2]{0} parameter(0)\n"
         "  %c = bf16[2]{0} convert(f32[2]{0} %p)\n  ROOT %d = bf16[2]{0} convert(%c)\n}")
  assert mfu_hlo.opcode_counts(hlo) == {"parameter": 1, "convert": 2}
  mlir = "%0 = stablehlo.convert %a : tensor<f32>\n%1 = stablehlo.gather(%0)"
  assert mfu_hlo.stablehlo_counts(mlir) == {"convert": 1, "gather": 1}


@pytest.mark.slow
def test_mfu_check_script_runs_tiny_end_to_end(tmp_path):
  """bench/mfu_check.sh on the CPU with the smoke model: results, summary, profile, cache."""
  out = tmp_path / "out"
  proc = subprocess.run(["bash", "bench/mfu_check.sh", str(out), "", "--config=configs/smoke.py",
                         "--tiny", "--only=1", "--steps=2", "--budget_s=900"],
                        env=dict(os.environ, PYTHON=sys.executable,  # one device, as on the GPU
                                 XLA_FLAGS="--xla_force_host_platform_device_count=1"),
                        capture_output=True,
                        text=True, timeout=1500, check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
  assert [r["measure"] for r in records] == ["step", "eval", "deviation", "profile"]
  step = records[0]
  assert step["step_ms"] > 0 and 0 < step["mfu"] and step["nominal_flop_per_step"] > 0
  assert 0 < records[2]["relative"] < 0.05  # bf16 within 5% of the float32 map's scale
  assert (out / "profile" / "op_time.json").exists() and (out / "xla_cache.tgz").exists()
  assert not (out / "xla_cache").exists() and "| candidate |" in (out / "summary.md").read_text()
