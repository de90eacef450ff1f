"""FAST-VQA-B cost: forward and train-step time and peak memory at a given batch (issue 4).

Usage (from the repository root):
  PYTHONPATH=. .venv/bin/python bench/fast_vqa_b_cost.py [--batch=1] [--kinds=none,awp] \
      [--dtype=float32|bfloat16] [--remat] [--remat_policy=dots_saveable] [--steps=5] [--no_forward]

Builds the model of `--config` (default configs/fast_vqa_b.py: FAST-VQA-B, 32x224x224 clips) with
`model.remat` / `model.dtype` from the flags, and times on one fixed in-memory uint8 batch (no
TensorFlow, no input pipeline):
  forward     the jitted eval-mode forward pass (quality map), as the reference's inference;
  step:<kind> `train_step.make_train_step` with the config's AdamW (two lr groups, warmup+cosine),
              PLCC + 0.3 rank loss and EMA; kind 'none' is the plain step, 'awp' the reference's
              two-pass AWP step at the config's gamma.
Each measurement runs in its own subprocess, so that its peak memory is its own, and prints one
JSON line: compile seconds, the median / min of `--steps` timed calls after `--warmup` calls,
XLA's `memory_analysis()` (argument / output / temp / alias bytes) and `cost_analysis()` flops
(XLA's own estimate: on GPU it leaves out library calls such as cuBLAS GEMMs, so it is far below
the model's FLOPs there; compare it between CPU runs only), and the peak memory: the process's peak RSS (`resource.getrusage`) and, on a GPU,
`peak_bytes_in_use` of the device. On CPU at batch 1 the line also holds the PyTorch reference's
time (5.9 s forward, 11.1 s plain step; paper notes ENV_NOTES.md) and our ratio to it.

At batch 1 the batch-statistic losses (PLCC, rank) have no spread: the loss is 0 and its gradient
NaN (the derivative of a zero std), which changes nothing in the arithmetic being timed; the JSON
holds the last step's `loss` and `grad_norm`.
Needs jax, flax, optax, numpy and ml_collections (configs), not TensorFlow.
"""

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.families import losses
from vqa_jax.training import optim
from vqa_jax.training import train_step
from vqa_jax.models import fast_vqa as model_lib

# The official FAST-VQA-B in PyTorch 2.13 on the 2-core CPU, batch 1, 32x224^2 (ENV_NOTES.md).
REFERENCE_CPU_BATCH1_S = {"forward": 5.9, "step:none": 11.1}


def load_config(path: str):
  """get_config() of a config file, loaded by path."""
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def xla_figures(compiled) -> dict:
  """XLA's static memory (bytes) and flop figures of a compiled executable (absent: omitted)."""
  figures = {}
  memory = compiled.memory_analysis()
  for field in ("argument", "output", "temp", "alias", "generated_code"):
    value = getattr(memory, f"{field}_size_in_bytes", None)
    if value is not None:
      figures[f"xla_{field}_bytes"] = int(value)
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # Older jax: one dict per computation.
    cost = cost[0] if cost else {}
  if cost and "flops" in cost:
    figures["xla_flops"] = float(cost["flops"])
  return figures


def peak_memory() -> dict:
  """Peak RSS of this process and, where the device reports it, peak device bytes in use."""
  figures = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
  stats = jax.devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    figures["peak_device_bytes"] = int(stats["peak_bytes_in_use"])
  return figures


def time_calls(call, args: tuple, warmup: int, steps: int, threads_state: bool):
  """(seconds per call over `steps` calls after `warmup`, the last output); with `threads_state`
  the first output replaces the first argument (a donated train state)."""
  times = []
  for i in range(warmup + steps):
    start = time.perf_counter()
    out = call(*args)
    jax.block_until_ready(out)
    if i >= warmup:
      times.append(time.perf_counter() - start)
    if threads_state:
      args = (out[0],) + args[1:]
  return times, out


def measure(name: str, args, config) -> dict:
  """Compiles and times one measurement ('forward' or 'step:<kind>'); returns its JSON record."""
  s = config.sampling
  size = s.grid * s.patch
  rng = np.random.default_rng(0)
  batch = {"video": rng.integers(0, 256, (args.batch, s.clip_len, size, size, 3), dtype=np.uint8),
           "label": rng.normal(size=args.batch).astype(np.float32)}
  batch = jax.device_put(batch)
  model = model_lib.build_model(config.model)
  params = jax.jit(lambda v: model.init(jax.random.key(0), v, train=False)["params"])(
      batch["video"][:1])
  key = jax.random.key(1)

  if name == "forward":
    fn = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False))
    call_args = (params, batch["video"])
    threads_state = False
  else:
    kind = name.split(":", 1)[1]
    perturb_cfg = train_step.PerturbConfig(kind, float(config.perturb.gamma) or 1e-4)
    tx = optim.make_optimizer(config.train)
    step = train_step.make_train_step(losses.make_loss_fn(model, config.train.plcc_rank_weight), tx,
                                      perturb_cfg, config.train.ema_decay)
    fn = jax.jit(step, donate_argnums=0)
    call_args = (train_step.create_train_state(params, tx, perturb_cfg), batch, key)
    threads_state = True
  del params

  start = time.perf_counter()
  compiled = fn.lower(*call_args).compile()
  compile_s = time.perf_counter() - start
  times, out = time_calls(compiled, call_args, args.warmup, args.steps, threads_state)
  record = {
      "measure": name, "batch": args.batch, "clip": [s.clip_len, size, size],
      "dtype": config.model.dtype, "remat": bool(config.model.remat),
      "remat_policy": config.model.get("remat_policy", ""),
      "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
      "compile_s": round(compile_s, 2), "median_s": round(statistics.median(times), 4),
      "min_s": round(min(times), 4), "times_s": [round(t, 4) for t in times],
  }
  if threads_state:
    record.update({name: float(out[1][name]) for name in ("loss", "grad_norm")})
  record.update(xla_figures(compiled))
  record.update(peak_memory())
  reference = REFERENCE_CPU_BATCH1_S.get(name)
  if reference and args.batch == 1 and jax.devices()[0].platform == "cpu":
    record["reference_s"] = reference
    record["ratio_to_reference"] = round(record["median_s"] / reference, 3)
  return record


def parse_args(argv=None):
  """Command-line flags."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/fast_vqa_b.py")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--kinds", default="none,awp",
                      help="comma-separated train-step perturbation kinds ('' for none)")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--remat", action="store_true", help="checkpoint every Swin block")
  parser.add_argument("--remat_policy", default="",
                      help="jax.checkpoint_policies name for --remat ('' saves nothing)")
  parser.add_argument("--steps", type=int, default=5, help="timed calls per measurement")
  parser.add_argument("--warmup", type=int, default=1, help="untimed calls after compiling")
  parser.add_argument("--no_forward", action="store_true", help="skip the forward measurement")
  parser.add_argument("--measure", default="", help=argparse.SUPPRESS)  # Internal: one subprocess.
  return parser.parse_args(argv)


def main():
  """Runs each measurement in a subprocess (or, with --measure, one here) and prints JSON lines."""
  args = parse_args()
  if args.measure:
    config = load_config(args.config)
    config.model.remat = args.remat
    config.model.dtype = args.dtype
    if args.remat_policy:
      config.model.remat_policy = args.remat_policy
    print(json.dumps(measure(args.measure, args, config)), flush=True)
    return
  names = ([] if args.no_forward else ["forward"])
  names += [f"step:{kind}" for kind in args.kinds.split(",") if kind]
  failed = 0
  for name in names:
    result = subprocess.run([sys.executable, *sys.argv, f"--measure={name}"], env=os.environ,
                            check=False)
    failed += result.returncode != 0
  sys.exit(1 if failed else 0)


if __name__ == "__main__":
  main()
