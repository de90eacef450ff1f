"""Pairing fingerprints: what a run starts from and what it reads, digested, to check pairs share it.

A variant is compared with the baseline of the same seed. They must share the initial weights, the
training batches (videos, clip positions, labels) and the dropout keys, so that the perturbation or
regulariser is the only difference. `fingerprint` builds these through the trainer's own functions
(`trainer.init_state`, `trainer.pretrained_variables`, `trainer.train_batches`) and digests them;
`check_pairs` compares every run with its seed's baseline and raises on a difference.
"""

import hashlib
from typing import Iterable, Mapping

import jax
import ml_collections
import numpy as np

from vqa_jax import families
from vqa_jax.config import perturb_config
from vqa_jax.training import optim
from vqa_jax.runtime import sharding
from vqa_jax.training import trainer

FIELDS = ("init", "batches", "rng")


def digest(arrays: Iterable[np.ndarray]) -> str:
  """BLAKE2b hex digest of the arrays' dtypes, shapes and bytes, in order."""
  h = hashlib.blake2b(digest_size=16)
  for array in arrays:
    array = np.ascontiguousarray(np.asarray(array))
    h.update(f"{array.dtype}{array.shape}".encode())
    h.update(array.tobytes())
  return h.hexdigest()


def initial_params(config: ml_collections.ConfigDict, mesh):
  """The params a fresh run of `config` starts from (random init, or init.checkpoint's)."""
  family = families.build(config)
  perturb_cfg = perturb_config.PerturbConfig.from_config(config.perturb)
  tx = optim.make_optimizer(config.train)
  state = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh)
  if trainer.has_init(config):
    state = trainer.init_state(family, tx, perturb_cfg, config.seed, mesh,
                               *trainer.pretrained_variables(config, state))
  return jax.device_get(state.params)


def fingerprint(config: ml_collections.ConfigDict, splits: Mapping[str, list],
                num_batches: int = 2) -> dict[str, str]:
  """{'init', 'batches', 'rng'} digests of a run of `config` on `splits` (its first batches)."""
  mesh = sharding.make_mesh()
  params = jax.tree_util.tree_leaves(initial_params(config, mesh))
  entries = trainer.prepare_splits(config, splits)[config.data.train_split]
  batches = trainer.train_batches(config, entries, mesh)
  seen = []
  try:
    for i, (batch, _) in enumerate(batches):
      if i == num_batches:
        break
      seen += [batch["index"], batch["label"], batch["video"]]
  finally:
    batches.close()
  return {"init": digest(params), "batches": digest(seen),
          "rng": digest([jax.random.key_data(jax.random.key(config.seed))])}


def check_pairs(prints: Mapping[tuple[str, int], Mapping[str, str]], baseline: str = "baseline",
                fields: Iterable[str] = FIELDS) -> None:
  """Raises ValueError if a (variant, seed)'s `fields` differ from (baseline, seed)'s."""
  problems = []
  for (variant, seed), fp in prints.items():
    ref = prints.get((baseline, seed))
    if ref is None:
      problems.append(f"{variant} seed {seed}: no baseline run of seed {seed}")
      continue
    problems += [f"{variant} seed {seed}: {field} differs from the baseline's"
                 for field in fields if fp[field] != ref[field]]
  if problems:
    raise ValueError("unpaired runs: " + "; ".join(problems))
