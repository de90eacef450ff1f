"""A config's jitted train step with a random batch: what the step benchmarks compile and time."""

import jax
import numpy as np

from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.runtime import sharding
from vqa_jax.training import optim
from vqa_jax.training import trainer


def random_batch(config) -> dict:
  """A uint8 video batch and float labels of the config's training shape."""
  s = config.sampling
  side = s.grid * s.patch
  rng = np.random.default_rng(0)
  return {"video": rng.integers(0, 256, (config.train.batch_size, s.clip_len, side, side, 3),
                                dtype=np.uint8),
          "label": rng.normal(size=config.train.batch_size).astype(np.float32)}


def step_setup(config):
  """(step_fn, family, state, batch, rng): the config's train step, unjitted-lowered, and inputs."""
  mesh = sharding.make_mesh()
  family = families.build(config)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb, config.model.dtype)
  tx = optim.make_optimizer(config.train)
  state = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh)
  batch = sharding.shard_batch(random_batch(config), mesh)
  step = trainer.make_step_fn(config, family, tx, mesh, perturb_cfg)
  return step, family, state, batch, jax.random.key(config.seed)
