"""Training throughput end to end: loader alone, step alone, and the real training loop.

Usage (CPU, the synthetic set):
  PYTHONPATH=. .venv/bin/python bench/train_throughput.py --config=configs/smoke.py \
      --loaders=tf_data,grain --workers=1,2 --steps=24
Usage (GPU host without TensorFlow, real clips; copies of each video, e.g. the 720p clip x32):
  PYTHONPATH=. python3 bench/train_throughput.py --config=configs/fast_vqa_b.py \
      --config.model.dtype=bfloat16 --loaders=grain --workers=8,15 --steps=40 \
      --videos=clips/a_720p.mp4:32,clips/b_540p.mp4:12 --out=throughput.json

For each decoder (--decoders: data.decoder 'opencv', 'nvdec', 'hybrid'), loader and worker count it
reports, in clips/s of the config's training input
(batch_size x num_clips_train per step):
  input   the loader alone, from its first batch on (startup excluded; reported beside it);
  step    the compiled train step alone on one in-memory batch (once: it does not depend on the loader);
  e2e     `trainer.run` for --steps steps, from the trainer's own metrics.jsonl (input-wait accounting,
          `throughput.InputMeter`), the first --skip_intervals log intervals left out (startup, and
          the batches the loader prefetched while the step compiled, which would flatter the rate);
  wait    the e2e run's input-wait fraction over the same intervals;
  e2e / min(input, step): the loop's efficiency (target >= 0.9).
The loop's evaluation runs on --eval_videos videos and is not timed. Compiled programs are cached
(--cache_dir) so the runs after the first do not compile again. TensorFlow is imported only for
--loaders=tf_data.
"""

import json
import os
import shutil
import statistics
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np
from ml_collections import config_flags

from vqa_jax.config import validation
from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.training import run_log
from vqa_jax.training import optim
from vqa_jax.runtime import sharding
from vqa_jax.training import trainer
from vqa_jax.data import element_plan
from vqa_jax.data import labels
from vqa_jax.data import loaders
from vqa_jax.data import nvdec_pipeline
from vqa_jax.data import sources
from vqa_jax.data.labels import Entry

_CONFIG = config_flags.DEFINE_config_file("config", "configs/smoke.py", "Config file.")
_LOADERS = flags.DEFINE_list("loaders", ["tf_data", "grain"], "Loaders to measure.")
_WORKERS = flags.DEFINE_list("workers", ["2"], "Decode worker counts to measure (-1: all cores).")
_STEPS = flags.DEFINE_integer("steps", 24, "Training steps per measurement.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 4, "Steps per e2e log interval.")
_SKIP_INTERVALS = flags.DEFINE_integer(
    "skip_intervals", 2, "e2e log intervals left out: the first holds the loader's startup, the "
    "second drains what the loader prefetched while the step compiled.")
_STEP_REPEATS = flags.DEFINE_integer("step_repeats", 10, "Steps timed for the step-only rate.")
_VIDEOS = flags.DEFINE_list("videos", [], "PATH:COPIES,... : train on COPIES copies of each video "
                            "under a label file (random MOS) instead of the config's data source.")
_EVAL_VIDEOS = flags.DEFINE_integer("eval_videos", 4, "Videos in the (untimed) final evaluation.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", "", "JAX compilation cache ('' = a temp dir).")
_OUT = flags.DEFINE_string("out", "", "Also write the results as JSON here.")
_DECODERS = flags.DEFINE_list("decoders", ["opencv"], "data.decoder values to measure the loader "
                              "with ('opencv', 'nvdec', 'hybrid'; NVDEC's share and threads from "
                              "--config.data.nvdec_share / nvdec_threads).")
_E2E_DECODERS = flags.DEFINE_list("e2e_decoders", [], "Decoders also measured end to end "
                                  "(default: all of --decoders).")


def copied_videos(specs: list[str], root: str) -> list[Entry]:
  """COPIES copies of each PATH in `root`, listed in root/labels.txt (FAST-VQA format, random MOS).

  The entries are read back from that label file, as a real dataset's are.
  """
  rng = np.random.default_rng(0)
  lines = []
  for spec in specs:
    path, _, copies = spec.rpartition(":")
    stem, ext = os.path.splitext(os.path.basename(path))
    for i in range(int(copies)):
      name = f"{stem}_{i:03d}{ext}"
      shutil.copyfile(path, os.path.join(root, name))
      lines.append(f"{name}, 0, 0, {rng.uniform(1, 5):.4f}\n")
  label_file = os.path.join(root, "labels.txt")
  with open(label_file, "w", encoding="utf-8") as f:
    f.writelines(lines)
  return labels.read_labels(label_file, root)


def input_only(config, entries, loader: str, workers: int) -> tuple[float, float]:
  """(startup seconds to the first batch, clips/s after it) of the loader alone.

  The loader's decoder is the config's `data.decoder`; device batches are waited for.
  """
  plan = trainer.training_plan(config, entries)  # config.train.steps is --steps here
  start = time.perf_counter()
  batches = loaders.batches(plan, loader, workers, nvdec_pipeline.Decoding.from_config(config.data))
  jax.block_until_ready(next(batches)["video"])
  first = time.perf_counter()
  count = 0
  for batch in batches:
    jax.block_until_ready(batch["video"])
    count += 1
  clips = count * config.train.batch_size * config.sampling.num_clips_train
  return first - start, clips / (time.perf_counter() - first)


def step_only(config, batch: dict) -> tuple[float, float]:
  """(seconds per step, clips/s) of the run's compiled step on one in-memory batch."""
  mesh = sharding.make_mesh()
  family = families.build(config)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb)
  tx = optim.make_optimizer(config.train)
  state = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh)
  device_batch = sharding.shard_batch({**element_plan.model_inputs(batch), "label": batch["label"]},
                                      mesh)
  rng = jax.random.key(config.seed)
  step = trainer.compile_step(trainer.make_step_fn(config, family, tx, mesh, perturb_cfg), state,
                              device_batch, rng)
  state, metrics = step(state, device_batch, rng)  # warm-up
  jax.block_until_ready(metrics)
  times = []
  for _ in range(_STEP_REPEATS.value):
    start = time.perf_counter()
    state, metrics = step(state, device_batch, rng)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  return seconds, config.train.batch_size * config.sampling.num_clips_train / seconds


def end_to_end(config, splits: dict, workdir: str) -> tuple[float, float, float]:
  """(clips/s, input-wait fraction, seconds per step) of trainer.run past the skipped intervals."""
  trainer.run(config, workdir, splits)
  records = run_log.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  skip = _SKIP_INTERVALS.value
  if len(records) <= skip:
    raise ValueError(f"{len(records)} log intervals, {skip} left out: raise --steps")
  steps = np.diff([r["step"] for r in records[skip - 1:]] if skip else
                  [0] + [r["step"] for r in records])
  records = records[skip:]
  wall = np.array([r["step_time_s"] for r in records]) * steps
  clips = steps.sum() * config.train.batch_size * config.sampling.num_clips_train
  waited = np.array([r["input_wait_fraction"] for r in records]) * wall
  return clips / wall.sum(), waited.sum() / wall.sum(), wall.sum() / steps.sum()


def write_results(step_seconds: float, rows: list[dict]) -> None:
  """Writes the results so far as JSON to --out (after each row, so a cut-off run keeps them)."""
  if _OUT.value:
    with open(_OUT.value, "w", encoding="utf-8") as f:
      json.dump({"device": jax.devices()[0].device_kind, "cores": os.cpu_count(),
                 "videos": _VIDEOS.value, "steps": _STEPS.value, "step_seconds": step_seconds,
                 "rows": rows}, f, indent=1)


def main(argv):
  """Measures and prints the table (and writes --out)."""
  del argv
  scratch = tempfile.mkdtemp(prefix="train_throughput_")
  jax.config.update("jax_compilation_cache_dir", _CACHE_DIR.value or os.path.join(scratch, "xla"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  config = _CONFIG.value
  validation.validate(config)
  if _VIDEOS.value:
    os.makedirs(os.path.join(scratch, "videos"))
    entries = copied_videos(_VIDEOS.value, os.path.join(scratch, "videos"))
  else:
    entries = sources.load_splits(config.data)[config.data.train_split]
  # Evaluation (not timed) on a few videos; no held-out split.
  spread = entries[::max(1, len(entries) // _EVAL_VIDEOS.value)][:_EVAL_VIDEOS.value]
  splits = {config.data.train_split: entries, "eval": spread}
  config.data.eval_splits = ("eval",)
  config.data.val_split, config.data.val_fraction = "", 0.0
  config.train.steps = _STEPS.value
  config.train.log_every = _LOG_EVERY.value
  config.train.checkpoint_every = _STEPS.value
  config.train.eval_every = 0
  config.eval.models = ("ema",)
  config.eval.select_model = "ema"
  config.log.tensorboard = False
  clips_per_step = config.train.batch_size * config.sampling.num_clips_train
  print(f"device {jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} cores; "
        f"{len(entries)} training videos; {clips_per_step} clips per step; {_STEPS.value} steps",
        flush=True)

  batch = next(loaders.batches(trainer.training_plan(config, entries), "grain", 0))
  step_s, step_rate = step_only(config, batch)
  print(f"step only: {1000 * step_s:.1f} ms per step = {step_rate:.1f} clips/s", flush=True)
  rows = []
  write_results(step_s, rows)
  e2e_decoders = _E2E_DECODERS.value or _DECODERS.value
  for decoder in _DECODERS.value:
    for loader in _LOADERS.value:
      for workers in (int(w) for w in _WORKERS.value):
        run_config = config.copy_and_resolve_references()
        run_config.data.loader, run_config.data.workers = loader, workers
        run_config.data.decoder = decoder
        validation.validate(run_config)
        startup, input_rate = input_only(run_config, entries, loader, workers)
        row = {"decoder": decoder, "loader": loader,
               "workers": element_plan.default_workers(workers),
               "input_startup_s": startup, "input_clips_per_s": input_rate,
               "step_clips_per_s": step_rate}
        if decoder != "opencv":
          row.update(nvdec_share=run_config.data.nvdec_share,
                     nvdec_threads=run_config.data.nvdec_threads)
        e2e = ""
        if decoder in e2e_decoders:
          e2e_rate, wait, e2e_step_s = end_to_end(
              run_config, splits, os.path.join(scratch, f"run_{decoder}_{loader}_{workers}"))
          row.update(e2e_clips_per_s=e2e_rate, e2e_step_time_s=e2e_step_s,
                     input_wait_fraction=wait, efficiency=e2e_rate / min(input_rate, step_rate))
          e2e = (f" | e2e {e2e_rate:7.1f} clips/s, wait {wait:.0%} | e2e / min(input, step) "
                 f"{row['efficiency']:.2f}")
        rows.append(row)
        write_results(step_s, rows)
        print(f"{decoder:>7} {loader:>8} x{row['workers']:<3} input {input_rate:7.1f} clips/s "
              f"(startup {startup:.1f} s) | step {step_rate:7.1f}{e2e}", flush=True)
  shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
