"""What made a scoring row: the checkpoint (path and content digest) and the config digest.

`checkpoint_digest` is a SHA-256 over the variables the scorer actually restored (each leaf's
path, dtype, shape and bytes; the EMA or the raw params, as chosen) and the calibration that maps
them to MOS. It is a content digest, so a checkpoint that was copied, moved or re-saved with the
same weights keeps it, a workdir whose latest step changed does not, and `--noema` differs from
the EMA params. Hashing the restored arrays costs one pass over the params (about 0.1 GB for
FAST-VQA-B), unlike a hash of the checkpoint files, which also hold the optimizer state and, in
orbax's shared chunk files, do not separate the EMA params from the raw ones; names, sizes or
mtimes of files would change on a copy and say nothing about the contents.

`config_digest` is a SHA-256 over the config sections that decide a score: `model`, `sampling`,
`motion` and `data.motion_dir` (not training fields, so a run's stored config and the shipped file
it came from agree). Digests are the first 16 hex digits.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

DIGEST_HEX_DIGITS = 16
FIELDS = ("checkpoint", "checkpoint_digest", "config_digest")
SCORING_SECTIONS = ("model", "sampling", "motion")


def tree_digest(tree: Any, extra: Any = None) -> str:
  """SHA-256 (16 hex digits) of a pytree's leaves (path, dtype, shape, bytes) and `extra` (JSON)."""
  digest = hashlib.sha256()
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
    array = np.ascontiguousarray(jax.device_get(leaf))
    digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape}|".encode())
    digest.update(array.data)
  digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
  return digest.hexdigest()[:DIGEST_HEX_DIGITS]


def config_digest(config: ml_collections.ConfigDict) -> str:
  """SHA-256 (16 hex digits) of the config sections that decide a score (module docstring)."""
  sections = {name: config[name].to_dict() for name in SCORING_SECTIONS if name in config}
  if "data" in config and "motion_dir" in config.data:
    sections["data.motion_dir"] = config.data.motion_dir
  text = json.dumps(sections, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_HEX_DIGITS]


def fields(checkpoint: str, checkpoint_digest_: str, config_digest_: str) -> dict:
  """The provenance fields every row carries (the checkpoint as an absolute path)."""
  return dict(zip(FIELDS, (os.path.abspath(checkpoint), checkpoint_digest_, config_digest_)))


def _described(row: dict) -> str:
  """'checkpoint P (digest D), config digest C' of a row, or that it records none."""
  if not row.get("checkpoint_digest"):
    return "no checkpoint recorded (written before rows recorded one)"
  return (f"checkpoint {row.get('checkpoint') or '?'} (digest {row['checkpoint_digest']}), config "
          f"digest {row.get('config_digest') or '?'}")


def mixed_rows_problem(rows: list[dict], expected: dict, where: str) -> str:
  """Why appending rows of `expected`'s provenance to `rows` (read from `where`) would mix two
  models' scores; '' when every row has the same checkpoint and config digests."""
  keys = ("checkpoint_digest", "config_digest")
  others = [row for row in rows if tuple(row.get(k) or None for k in keys) !=
            tuple(expected[k] for k in keys)]
  if not others:
    return ""
  differs = [what for what, k in zip(("checkpoint", "config"), keys)
             if (others[0].get(k) or None) != expected[k]]
  return (f"{where} holds {len(others)} of {len(rows)} rows from another "
          f"{' and '.join(differs)} (first: {_described(others[0])}; this run: "
          f"{_described(expected)}): resuming would mix two models' scores. Give another output "
          "file, or pass --allow_mixed_checkpoints")
