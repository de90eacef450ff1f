"""Scoring cost on XLA:CPU: one 4-clip FAST-VQA-B video in one batch, clip by clip, and as
`vqa_jax.score` runs it (issue 20 item 5: target score-path time / single-clip passes <= 1.0x).

Usage (from the repository root; minutes on 2 cores, run it once):
  PYTHONPATH=. nice -n 5 .venv/bin/python bench/score_cpu_chunks.py [--config=configs/fast_vqa_b.py]
      [--repeats=3]

Random-init params of the config's model (no weights needed) and one fixed random uint8 video of
`num_clips_eval` clips (FAST-VQA-B: 4 x 32 x 224 x 224). Times the first call of each way
(compilation included), then `--repeats` interleaved rounds of all three (min and median) of:
  batch     all clips in one forward pass (`make_map_fn(..., clip_chunk=0)`);
  singles   each clip alone, one after the other (`clip_chunk=1`), the reference cost;
  score     `make_map_fn` with its default chunk (`default_clip_chunk()`), what `score` runs;
and checks the three maps agree. Prints one JSON line with the seconds and the ratios to singles.
"""

import argparse
import importlib.util
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.scoring import score
from vqa_jax.models.fast_vqa import build_model


def load_config(path: str):
  """The config of a config file."""
  spec = importlib.util.spec_from_file_location("bench_cfg", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def timed(fn, clips) -> tuple[float, np.ndarray]:
  """(seconds of one call, its map)."""
  start = time.perf_counter()
  out = fn(clips)
  return time.perf_counter() - start, out


def main() -> None:
  """Times batch / single-clip / score-path maps and prints the JSON line."""
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="configs/fast_vqa_b.py")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  config = load_config(args.config)
  s = config.sampling
  size = s.grid * s.patch
  model = build_model(config.model)
  params = jax.jit(lambda k: model.init(k, jnp.zeros((1, s.clip_len, size, size, 3), jnp.uint8),
                                        train=False)["params"])(jax.random.key(0))
  clips = np.random.default_rng(0).integers(
      0, 256, (s.num_clips_eval, s.clip_len, size, size, 3), np.uint8)
  results = {"backend": jax.default_backend(), "clips": list(clips.shape),
             "default_clip_chunk": score.default_clip_chunk()}
  fns = {name: score.make_map_fn(config, params, chunk)
         for name, chunk in (("batch", 0), ("singles", 1), ("score", None))}
  maps, times = {}, {name: [] for name in fns}
  for name, fn in fns.items():  # first calls: compilation included
    results[f"{name}_first_call_s"], maps[name] = timed(fn, clips)
  for _ in range(args.repeats):  # interleaved, so that load from other processes hits all alike
    for name, fn in fns.items():
      seconds, maps[name] = timed(fn, clips)
      times[name].append(seconds)
  for name in fns:
    results[f"{name}_s"] = min(times[name])
    results[f"{name}_median_s"] = statistics.median(times[name])
  for name in ("batch", "score"):
    results[f"{name}_over_singles"] = results[f"{name}_s"] / results["singles_s"]
    results[f"{name}_over_singles_median"] = (results[f"{name}_median_s"]
                                              / results["singles_median_s"])
  results["max_map_diff"] = float(max(np.abs(maps[n] - maps["singles"]).max()
                                      for n in ("batch", "score")))
  print(json.dumps(results))


if __name__ == "__main__":
  main()
