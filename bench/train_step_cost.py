"""Cost of the perturbed train step relative to the plain one (same model, batch and jit setup).

Usage:
  PYTHONPATH=. .venv/bin/python bench/train_step_cost.py [--config configs/demo.py] [--repeats 20]

Builds the config's model and optimizer, jits `make_train_step` for perturbation kinds none, awp
and rwp, runs each on one fixed in-memory uint8 batch (no TensorFlow needed), and prints the median
step time of each kind and its ratio to the plain step. The reference pays 2 forward + 2 backward
passes per AWP step, so the expected ratio is about 2.
"""

import argparse
import importlib.util
import statistics
import time

import jax
import numpy as np

from vqa_jax import optim
from vqa_jax import train_step
from vqa_jax import trainer
from vqa_jax.models import model as model_lib


def load_config(path: str):
  """get_config() of a config file, loaded by path."""
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def time_kind(kind: str, config, batch: dict, repeats: int) -> tuple[float, float]:
  """(compile seconds, median step seconds) of the train step with perturbation `kind`."""
  model = model_lib.build_model(config.model)
  tx = optim.make_optimizer(config.train)
  params = model.init({"params": jax.random.key(0)}, batch["video"][:1], train=False)["params"]
  cfg = train_step.PerturbConfig(kind=kind, gamma=float(config.perturb.gamma))
  step = jax.jit(train_step.make_train_step(trainer.make_loss_fn(model, 0.3), tx, cfg, 0.99),
                 donate_argnums=0)
  state = train_step.create_train_state(params, tx)
  key = jax.random.key(1)
  start = time.perf_counter()
  compiled = step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(repeats + 2):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  return compile_s, statistics.median(times[2:])


def main():
  """Prints compile time, median step time and the ratio to the plain step per kind."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/demo.py")
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args()
  config = load_config(args.config)
  s = config.sampling
  size = s.grid * s.patch
  rng = np.random.default_rng(0)
  batch = {"video": rng.integers(0, 256, (config.train.batch_size, s.clip_len, size, size, 3),
                                 dtype=np.uint8),
           "label": rng.normal(size=config.train.batch_size).astype(np.float32)}
  batch = jax.device_put(batch)
  print(f"device {jax.devices()[0].device_kind}, batch {batch['video'].shape}, config {args.config}")
  plain = None
  for kind in ("none", "awp", "rwp"):
    compile_s, step_s = time_kind(kind, config, batch, args.repeats)
    plain = plain or step_s
    print(f"{kind:>5}: compile {compile_s:6.1f} s, step {1000 * step_s:8.1f} ms, "
          f"ratio to plain {step_s / plain:.2f}")


if __name__ == "__main__":
  main()
