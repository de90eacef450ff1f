"""Where the train step's time goes: a jax.profiler trace of the compiled step, time per op.

Usage:
  PYTHONPATH=. python3 bench/profile_step.py --config=configs/fast_vqa_b.py \
      --config.model.dtype=bfloat16 --steps=3 --out=/tmp/profile
(CPU smoke check: --config=configs/smoke.py.)

Builds the run's step exactly as the trainer does (`trainer.make_step_fn`: the config's family,
loss, optimizer and perturbation) on one in-memory random batch of the config's shape, compiles and
warms it up, then traces --steps steps. The trace (`<out>/plugins/profile/...xplane.pb`, readable in
TensorBoard's profile plugin or Perfetto) is summarised from `jax.profiler.ProfileData`: the XLA ops'
time on the device (kernels on the GPU's streams; the host's XLA ops on a CPU run), grouped three
ways and written to `<out>/op_time.json`:
  by_category   library GEMMs, cuDNN, copies, or the fusion kind XLA named the kernel after;
  by_family     kernel / op names without their instance numbers (loop_select_fusion, ...);
  by_op         the 30 costliest kernels / ops by name.
Each row: milliseconds per step and share of the traced kernel time. Tracing slows the step itself
(kernel-level tracing of CUDA graphs); the shares are what to read, the untraced step time is
bench/train_throughput.py's.
"""

import collections
import glob
import json
import os
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from bench import step_setup
from vqa_jax.training import trainer

_CONFIG = config_flags.DEFINE_config_file("config", "configs/smoke.py", "Config file.")
_SUMMARISE = flags.DEFINE_string("summarise", "", "Only summarise this saved .xplane.pb (no run).")
_STEPS = flags.DEFINE_integer("steps", 3, "Traced steps.")
_OUT = flags.DEFINE_string("out", "/tmp/profile_step", "Trace and op_time.json go here.")
_TOP = 30


def op_events(xplane_path: str) -> list[tuple[str, float, dict]]:
  """(kernel or op name, duration ns, stats) of every XLA op event.

  On a GPU the device plane's stream lines hold one event per kernel (named after the fusion or
  library kernel; XLA runs them inside command buffers, so `hlo_op` names only the buffer); on a
  CPU the host plane's thunk events carry the HLO op in `hlo_op`.
  """
  data = jax.profiler.ProfileData.from_file(xplane_path)
  device, host = [], []
  for plane in data.planes:
    on_device = plane.name.startswith("/device:")
    for line in plane.lines:
      if on_device and not line.name.startswith("Stream"):
        continue
      for event in line.events:
        stats = dict(event.stats)  # pylint: disable=not-an-iterable
        if on_device:
          device.append((event.name, event.duration_ns, stats))
        elif "hlo_op" in stats:
          host.append((str(stats["hlo_op"]), event.duration_ns, stats))
  return device or host


LIBRARY_MARKS = {"gemm": ("gemm", "xmma", "cutlass", "cublas", "matmul", "sm90_", "nvjet"),
                 "cudnn": ("cudnn", "fmha", "flash"), "memcpy/memset": ("memcpy", "memset")}


def kernel_family(name: str) -> str:
  """An op's family: its name without the trailing instance number (loop_select_fusion_15 -> ...)."""
  stem = name.split("(")[0]
  parts = stem.rsplit("_", 1)
  stem = parts[0] if len(parts) == 2 and parts[1].isdigit() else stem
  stem = stem.rsplit(".", 1)[0] if stem.rsplit(".", 1)[-1].isdigit() else stem
  return stem[:60]


def category(name: str) -> str:
  """A coarse class: library GEMM / cuDNN / copies, else the fusion kind XLA named the op after."""
  lowered = name.lower()
  for label, marks in LIBRARY_MARKS.items():
    if any(m in lowered for m in marks):
      return label
  for kind in ("loop", "input", "reduce", "transpose", "concatenate", "scatter", "gather",
               "dynamic_update_slice", "copy"):
    if lowered.startswith(kind):
      return f"{kind} fusion/op"
  return "other"


def summarise(events: list[tuple[str, float, dict]], steps: int) -> dict:
  """Per-step milliseconds and shares by category, by op family and by op."""
  total_ns = sum(d for _, d, _ in events) or 1.0
  groups = {"by_category": category, "by_family": kernel_family, "by_op": lambda name: name[:80]}
  out = {"traced_steps": steps, "op_ms_per_step": total_ns / steps / 1e6}
  for group, key in groups.items():
    times = collections.Counter()
    for name, duration, _ in events:
      times[key(name)] += duration
    out[group] = [{"name": k, "ms_per_step": v / steps / 1e6, "share": v / total_ns}
                  for k, v in times.most_common(_TOP)]
  return out


def summarise_file(xplane_path: str, steps: int) -> dict:
  """`summarise` of a saved trace (also for traces brought back from another machine)."""
  return summarise(op_events(xplane_path), steps)


def main(argv):
  """Compiles, warms up, traces and summarises the step."""
  del argv
  if _SUMMARISE.value:
    print(json.dumps(summarise_file(_SUMMARISE.value, _STEPS.value), indent=1))
    return
  config = _CONFIG.value
  step_fn, _, state, batch, rng = step_setup.step_setup(config)
  step = trainer.compile_step(step_fn, state, batch, rng)
  for _ in range(2):
    state, metrics = step(state, batch, rng)
  jax.block_until_ready((state, metrics))
  start = time.perf_counter()
  with jax.profiler.trace(_OUT.value):
    for _ in range(_STEPS.value):
      state, metrics = step(state, batch, rng)
    jax.block_until_ready((state, metrics))
  wall = (time.perf_counter() - start) / _STEPS.value
  paths = glob.glob(os.path.join(_OUT.value, "**", "*.xplane.pb"), recursive=True)
  summary = summarise_file(max(paths, key=os.path.getmtime), _STEPS.value)
  summary.update(device=jax.devices()[0].device_kind, batch=config.train.batch_size,
                 dtype=str(config.model.get("dtype", "float32")), wall_ms_per_step=1000 * wall,
                 perturb=config.perturb.kind)
  with open(os.path.join(_OUT.value, "op_time.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  print(f"{summary['device']}: {summary['wall_ms_per_step']:.1f} ms/step traced (ops "
        f"{summary['op_ms_per_step']:.1f} ms)")
  for group in ("by_category", "by_family"):
    print(group)
    for row in summary[group][:15]:
      print(f"  {row['name']:<40} {row['ms_per_step']:9.2f} ms {row['share']:6.1%}")


if __name__ == "__main__":
  app.run(main)
