"""Cost of the perturbed train step relative to the plain one (same model, batch and jit setup).

Usage:
  PYTHONPATH=. .venv/bin/python bench/train_step_cost.py [--config configs/demo.py] [--repeats 20] \
      [--every_k 2,4] [--population 4]

Builds the config's model and optimizer, jits `make_train_step` and runs it on one fixed in-memory
uint8 batch (no TensorFlow needed). Prints, per variant, the compile time, the mean step time over
blocks of steps (median over `repeats` blocks) and its ratio to the plain step:
  none, awp, rwp       the reference pays 2 forward + 2 backward passes per AWP step: target ≤ 2.05;
  awp every_k=k        one clean pass every k steps: target ≤ 1 + 1.05/k (blocks of k steps);
  sweep K              `make_population_step` with K radii against K separate AWP runs
                       (ratio = population step time / (K × single AWP step time); < 1 is a win).
"""

import argparse
import importlib.util
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.families import losses
from vqa_jax.training import optim
from vqa_jax.training import train_step
from vqa_jax.models import fast_vqa as model_lib


def load_config(path: str):
  """get_config() of a config file, loaded by path."""
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def time_step(step_fn, state, batch: dict, repeats: int, block: int) -> tuple[float, float]:
  """(compile seconds, median over `repeats` blocks of the mean seconds per step in a block)."""
  key = jax.random.key(1)
  step = jax.jit(step_fn, donate_argnums=0)
  start = time.perf_counter()
  compiled = step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  for _ in range(block):  # warm-up: one block
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready(metrics)
  blocks = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(block):
      state, metrics = compiled(state, batch, key)
    jax.block_until_ready((state, metrics))
    blocks.append((time.perf_counter() - start) / block)
  return compile_s, statistics.median(blocks)


def main():
  """Prints compile time, step time and the ratio to the plain step per variant."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/demo.py")
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--every_k", default="2,4", help="comma-separated k values ('' for none)")
  parser.add_argument("--population", type=int, default=4, help="K radii in one sweep (0: skip)")
  args = parser.parse_args()
  config = load_config(args.config)
  s = config.sampling
  size = s.grid * s.patch
  rng = np.random.default_rng(0)
  batch = {"video": rng.integers(0, 256, (config.train.batch_size, s.clip_len, size, size, 3),
                                 dtype=np.uint8),
           "label": rng.normal(size=config.train.batch_size).astype(np.float32)}
  batch = jax.device_put(batch)
  model = model_lib.build_model(config.model)
  tx = optim.make_optimizer(config.train)
  loss_fn = losses.make_loss_fn(model, 0.3)
  params = model.init({"params": jax.random.key(0)}, batch["video"][:1], train=False)["params"]
  gamma = float(config.perturb.gamma) or 1e-3
  print(f"device {jax.devices()[0].device_kind} x{jax.device_count()}, batch "
        f"{batch['video'].shape}, config {args.config}, gamma {gamma:g}")

  def report(name, cfgs, block=1, target=None):
    fresh = lambda c: train_step.create_train_state(jax.tree_util.tree_map(jnp.copy, params), tx, c)
    if len(cfgs) == 1:  # (copies: the state is donated)
      step_fn = train_step.make_train_step(loss_fn, tx, cfgs[0], 0.99)
      state = fresh(cfgs[0])
    else:
      step_fn = train_step.make_population_step(loss_fn, tx, cfgs, 0.99)
      state = train_step.stack_states([fresh(c) for c in cfgs])
    compile_s, step_s = time_step(step_fn, state, batch, args.repeats, block)
    target_text = f" (target <= {target:.3f})" if target else ""
    print(f"{name:>14}: compile {compile_s:6.1f} s, step {1000 * step_s:8.1f} ms, "
          f"ratio to plain {step_s / (plain or step_s):.3f}{target_text}", flush=True)
    return step_s

  plain = None
  plain = report("none", [train_step.PerturbConfig("none")])
  awp = report("awp", [train_step.PerturbConfig("awp", gamma)], target=2.05)
  report("rwp", [train_step.PerturbConfig("rwp", gamma)])
  for k in [int(k) for k in args.every_k.split(",") if k]:
    report(f"awp every_k={k}", [train_step.PerturbConfig("awp", gamma, every_k=k)], block=k,
           target=1 + 1.05 / k)
  if args.population:
    k = args.population
    radii = np.linspace(0.0, gamma, k).tolist()
    step_s = report(f"sweep K={k}", [train_step.PerturbConfig("awp", r) for r in radii])
    print(f"{'':>14}  population step / ({k} x awp step) = {step_s / (k * awp):.3f} "
          f"(< 1: one K-radius program beats K separate runs)", flush=True)


if __name__ == "__main__":
  main()
