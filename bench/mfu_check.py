"""The issue-30 device check: step time, MFU, memory and compile time per candidate, in one run.

Usage (from the repository root; bench/mfu_check.sh wraps it for the GPU machine):
  PYTHONPATH=. python3 bench/mfu_check.py --out=OUTDIR [--cache_dir=DIR] [--budget_s=420]
  (CPU smoke check: --config=configs/smoke.py --tiny)

Each measurement runs in its own subprocess (its peak device memory is its own) under the time
left of --budget_s; what does not fit is recorded as skipped. In order:
  step       AWP and plain train steps (`trainer.make_step_fn`, as a run builds it) of the
             candidates: attention implementation (auto = cuDNN where it takes the shapes, xla),
             remat (none, per block, dots_saveable) and per-device batch; each record holds the
             compile time, the median step time, clips/s, the MFU on the model's nominal FLOPs
             (`nominal_forward_flops`: 2 x MACs of every product in the forward pass; a plain
             step counts 3 forward passes, an AWP step 6, whatever remat recomputes) against
             --peak_tflops, and the device's peak bytes in use;
  precision  the AWP step with perturb.precision 'split' and 'cast' beside the default;
  eval       the eval-mode forward in clips/s;
  deviation  the bf16 quality map's deviation from the float32 one on the same batch;
  profile    bench/profile_step.py on the fastest AWP candidate (op-time summary).
Results: OUTDIR/results.jsonl (one record per measurement) and OUTDIR/summary.md. XLA's
persistent compilation cache is OUTDIR/xla_cache (copied from --cache_dir first, when given), so
a rerun handed the previous OUTDIR's cache does not pay the compiles again.
"""

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

# The bf16 matrix-product rate measured on the H200 (ENV_NOTES.md); the H100 SXM's is similar.
PEAK_BF16_TFLOPS = 790.0
PASSES = {"none": 3, "awp": 6}  # forward-pass equivalents of a step: fwd + 2x (bwd).


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One measured setting of the step."""
  kind: str = "awp"
  batch: int = 16
  remat: str = "none"  # 'none' | 'block' | a REMAT_POLICIES name (remat per block with it).
  attention: str = "auto"
  dtype: str = "bfloat16"
  precision: str = "auto"  # perturb.precision.

  @property
  def name(self) -> str:
    """A short label."""
    return (f"{self.kind} b{self.batch} remat={self.remat} attn={self.attention} "
            f"{self.dtype} perturb={self.precision}")


def candidates(tiny: bool) -> list[Candidate]:
  """The measured candidates, most informative first (the budget may cut the tail)."""
  batches = (2, 4, 8) if tiny else (16, 32, 64)
  base = batches[0]
  return [Candidate("awp", base), Candidate("none", base), Candidate("awp", base, attention="xla"),
          Candidate("none", base, attention="xla"),
          Candidate("awp", batches[1]), Candidate("awp", batches[2]),
          Candidate("awp", batches[2], remat="block"),
          Candidate("awp", batches[2], remat="dots_saveable"),
          Candidate("awp", base, precision="split"), Candidate("awp", base, precision="cast")]


def load_config(path: str):
  """get_config() of a config file, loaded by path."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("mfu_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def configure(config, cand: Candidate):
  """The config with the candidate's settings (batch is per device)."""
  import jax  # pylint: disable=import-outside-toplevel
  config.model.dtype = cand.dtype
  config.model.remat = cand.remat != "none"
  config.model.remat_policy = "" if cand.remat in ("none", "block") else cand.remat
  config.model.attention = cand.attention
  config.train.batch_size = cand.batch * jax.device_count()
  config.perturb.kind = cand.kind
  config.perturb.gamma = float(config.perturb.gamma) or 1e-3
  config.perturb.precision = cand.precision
  return config


def nominal_forward_flops(fn, *args) -> float:
  """2 x the multiply-adds of every dot_general / conv in `fn`'s jaxpr (nested ones included)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.extend.core  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  def walk(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
      name = eqn.primitive.name
      if name == "dot_general":
        (contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        total += 2.0 * np.prod(eqn.outvars[0].aval.shape) * np.prod([lhs[d] for d in contract])
      elif name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, spatial...)
        kernel = np.prod([rhs[d] for d in spec[1:]])
        total += 2.0 * np.prod(eqn.outvars[0].aval.shape) * kernel
      for value in eqn.params.values():
        for sub in value if isinstance(value, (list, tuple)) else (value,):
          if isinstance(sub, jax.extend.core.ClosedJaxpr):
            total += walk(sub.jaxpr)
          elif isinstance(sub, jax.extend.core.Jaxpr):
            total += walk(sub)
    return total

  return walk(jax.make_jaxpr(fn)(*args).jaxpr)


def _device_peak_bytes() -> int | None:
  import jax  # pylint: disable=import-outside-toplevel
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def _time(call, steps: int) -> list[float]:
  import jax  # pylint: disable=import-outside-toplevel
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(call())
    times.append(time.perf_counter() - start)
  return times


def measure_step(config, cand: Candidate, steps: int, peak_tflops: float) -> dict:
  """Compile time, step time, clips/s, MFU and peak memory of one candidate's train step."""
  import jax  # pylint: disable=import-outside-toplevel
  from bench import step_setup  # pylint: disable=import-outside-toplevel
  config = configure(config, cand)
  step_fn, family, state, batch, rng = step_setup.step_setup(config)
  start = time.perf_counter()
  step = step_fn.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  holder = {"state": state}

  def call():
    holder["state"], metrics = step(holder["state"], batch, rng)
    return metrics

  _time(call, 2)  # warm-up
  times = _time(call, steps)
  step_s = statistics.median(times)
  forward = nominal_forward_flops(
      lambda p, v: family.model.apply({"params": p}, v, train=False),
      holder["state"].params, batch["video"][:1])
  flops = forward * PASSES[cand.kind] * config.train.batch_size
  return {"compile_s": round(compile_s, 2), "step_ms": round(1000 * step_s, 2),
          "clips_per_s": round(config.train.batch_size / step_s, 1),
          "nominal_flop_per_step": flops,
          "mfu": float(f"{flops / step_s / (peak_tflops * 1e12 * jax.device_count()):.4g}"),
          "peak_device_bytes": _device_peak_bytes(), "times_ms": [round(1000 * t, 2) for t in times]}


def _model_and_video(config, batch: int, dtype: str):
  import jax  # pylint: disable=import-outside-toplevel
  from bench.step_setup import random_batch  # pylint: disable=import-outside-toplevel
  from vqa_jax.models import fast_vqa  # pylint: disable=import-outside-toplevel
  config.model.dtype = dtype
  config.train.batch_size = batch
  model = fast_vqa.build_model(config.model)
  video = jax.device_put(random_batch(config)["video"])
  params = jax.jit(lambda v: model.init(jax.random.key(0), v, train=False)["params"])(video[:1])
  return model, params, video


def measure_eval(config, batch: int, steps: int) -> dict:
  """The bf16 eval-mode forward's compile time and clips/s at `batch`."""
  import jax  # pylint: disable=import-outside-toplevel
  model, params, video = _model_and_video(config, batch, "bfloat16")
  start = time.perf_counter()
  forward = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False)).lower(
      params, video).compile()
  compile_s = time.perf_counter() - start
  _time(lambda: forward(params, video), 2)
  step_s = statistics.median(_time(lambda: forward(params, video), steps))
  return {"compile_s": round(compile_s, 2), "forward_ms": round(1000 * step_s, 2),
          "clips_per_s": round(batch / step_s, 1), "peak_device_bytes": _device_peak_bytes()}


def measure_deviation(config, batch: int) -> dict:
  """Max |bf16 map - float32 map| (absolute and over max |float32 map|) on one batch."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  maps = {}
  for dtype in ("float32", "bfloat16"):
    model, params, video = _model_and_video(config, batch, dtype)
    maps[dtype] = np.asarray(jax.jit(lambda p, v, m=model: m.apply({"params": p}, v, train=False))(
        params, video), np.float64)
  diff = float(np.abs(maps["bfloat16"] - maps["float32"]).max())
  scale = float(np.abs(maps["float32"]).max())
  return {"max_abs_diff": diff, "max_abs_float32": scale, "relative": diff / scale}


def run_one(args) -> dict:
  """The --measure subprocess: one measurement as a dict."""
  config = load_config(args.config)
  what = json.loads(args.measure)
  if what["measure"] == "step":
    return measure_step(config, Candidate(**what["candidate"]), args.steps, args.peak_tflops)
  if what["measure"] == "eval":
    return measure_eval(config, what["batch"], args.steps)
  return measure_deviation(config, what["batch"])


def prepare_cache(out: str, cache_dir: str) -> str:
  """OUTDIR/xla_cache, seeded from `cache_dir` when given; returns its path."""
  cache = os.path.join(out, "xla_cache")
  if cache_dir and os.path.abspath(cache_dir) != os.path.abspath(cache):
    if not os.path.isdir(cache_dir):
      raise SystemExit(f"mfu_check: cache folder {cache_dir} does not exist")
    shutil.copytree(cache_dir, cache, dirs_exist_ok=True)
  os.makedirs(cache, exist_ok=True)
  return cache


def subprocess_env(cache: str) -> dict:
  """This environment plus XLA's persistent compilation cache in `cache` (every compile kept)."""
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", PYTHONUNBUFFERED="1")
  env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
  return env


def summary_rows(records: list[dict]) -> list[str]:
  """Markdown table rows of the step records."""
  rows = ["| candidate | compile s | step ms | clips/s | MFU | peak GiB |", "|---|---|---|---|---|---|"]
  for r in records:
    if r.get("measure") != "step":
      continue
    if "step_ms" not in r:
      rows.append(f"| {r['name']} | {r.get('status', 'failed')} | | | | |")
      continue
    peak = r.get("peak_device_bytes")
    rows.append(f"| {r['name']} | {r['compile_s']} | {r['step_ms']} | {r['clips_per_s']} | "
                f"{100 * r['mfu']:.1f}% | {peak / 2**30:.1f} |" if peak else
                f"| {r['name']} | {r['compile_s']} | {r['step_ms']} | {r['clips_per_s']} | "
                f"{100 * r['mfu']:.1f}% | n/a |")
  return rows


def main():
  """Runs the measurements in subprocesses under the budget; writes results and summary."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=False, default="")
  parser.add_argument("--cache_dir", default="")
  parser.add_argument("--config", default="configs/fast_vqa_b.py")
  parser.add_argument("--tiny", action="store_true", help="small batches (CPU smoke check)")
  parser.add_argument("--budget_s", type=float, default=420.0)
  parser.add_argument("--steps", type=int, default=5, help="timed calls per measurement")
  parser.add_argument("--peak_tflops", type=float, default=PEAK_BF16_TFLOPS)
  parser.add_argument("--profile_steps", type=int, default=2)
  parser.add_argument("--only", type=int, default=0, help="measure only the first N candidates")
  parser.add_argument("--measure", default="", help=argparse.SUPPRESS)  # one subprocess
  args = parser.parse_args()
  if args.measure:
    print("RESULT " + json.dumps(run_one(args)), flush=True)
    return
  if not args.out:
    parser.error("--out is required")
  os.makedirs(args.out, exist_ok=True)
  env = subprocess_env(prepare_cache(args.out, args.cache_dir))
  deadline = time.monotonic() + args.budget_s
  cands = candidates(args.tiny)[:args.only or None]
  small = 2 if args.tiny else 16
  jobs = [{"measure": "step", "candidate": dataclasses.asdict(c), "name": c.name} for c in cands]
  jobs += [{"measure": "eval", "batch": 4 if args.tiny else 64, "name": "eval forward"},
           {"measure": "deviation", "batch": small // 2 or 1, "name": "bf16 vs float32"}]
  records = []
  with open(os.path.join(args.out, "results.jsonl"), "w", encoding="utf-8") as results:
    for job in jobs:
      left = deadline - time.monotonic()
      record = dict(job)
      if left < 20:
        record["status"] = "skipped: time budget"
      else:
        base = [a for a in sys.argv[1:] if not a.startswith("--measure")]
        try:
          proc = subprocess.run([sys.executable, __file__, *base, "--measure=" + json.dumps(job)],
                                env=env, capture_output=True, text=True, timeout=left,
                                check=False)
          lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
          if proc.returncode == 0 and lines:
            record.update(json.loads(lines[-1][len("RESULT "):]))
          else:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            record["status"] = f"failed (rc {proc.returncode}): {tail[0][:300]}"
        except subprocess.TimeoutExpired:
          record["status"] = "stopped: time budget"
      records.append(record)
      results.write(json.dumps(record) + "\n")
      results.flush()
      print(json.dumps(record), flush=True)
    best = min((r for r in records if r.get("measure") == "step" and "step_ms" in r
                and r["candidate"]["kind"] == "awp"),
               key=lambda r: r["step_ms"] / r["candidate"]["batch"], default=None)
    left = deadline - time.monotonic()
    if best and left > 30:
      c = Candidate(**best["candidate"])
      cfg_flags = [f"--config={args.config}", f"--config.model.dtype={c.dtype}",
                   f"--config.model.remat={c.remat != 'none'}",
                   f"--config.model.remat_policy={'' if c.remat in ('none', 'block') else c.remat}",
                   f"--config.train.batch_size={c.batch}", f"--config.perturb.kind={c.kind}",
                   f"--config.perturb.precision={c.precision}"]
      try:
        proc = subprocess.run([sys.executable, "bench/profile_step.py", *cfg_flags,
                               f"--steps={args.profile_steps}",
                               f"--out={os.path.join(args.out, 'profile')}"],
                              env=env, capture_output=True, text=True, timeout=left, check=False)
        record = {"measure": "profile", "name": best["name"], "rc": proc.returncode,
                  "summary": proc.stdout.strip().splitlines()[-40:]}
      except subprocess.TimeoutExpired:
        record = {"measure": "profile", "name": best["name"], "status": "stopped: time budget"}
      records.append(record)
      results.write(json.dumps(record) + "\n")
  with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(summary_rows(records)) + "\n\n")
    for r in records:
      if r["measure"] != "step":
        f.write(f"- {r['name']}: " + json.dumps({k: v for k, v in r.items()
                                                 if k not in ("measure", "name", "summary")}) + "\n")
  print("\n".join(summary_rows(records)), flush=True)


if __name__ == "__main__":
  main()
