"""The Swin VQA model of `build_model` as a conversion target: PyTorch keys, shapes, fresh init.

Shared by the FAST-VQA / Video Swin converter (`convert_weights`) and the 2D Swin one
(`convert_swin2d`), which fill the params of `families.abstract_variables`. Flax paths
('backbone', 'layers_0', 'blocks_1', 'attn', 'qkv', 'kernel') name PyTorch keys
('<prefix>.layers.0.blocks.1.attn.qkv.weight'): indexed modules `name_N` become `name.N`, kernels
and LayerNorm scales are `weight`.
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any
import zlib

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax.convert import state_dicts
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.models.video_swin import trunc_normal_init

PyTree = Any

BUFFER_SUFFIXES = ("relative_position_index", "attn_mask")  # Swin buffers: no Flax counterpart.
ZERO_INIT_LEAVES = ("fragment_position_bias_table",)  # The reference's init when a file lacks it.
_INDEXED = re.compile(r"^([a-z]+)_(\d+)$")


def swin_key(path: tuple[str, ...], prefixes: Mapping[str, str | None]) -> str | None:
  """Flax param path -> PyTorch key under `prefixes[path[0]]` ('' none; None: not stored)."""
  top = prefixes[path[0]]
  if top is None:
    return None
  parts = [top] if top else []
  for name in path[1:-1]:
    match = _INDEXED.match(name)
    parts.extend(match.groups() if match else (name,))
  parts.append(state_dicts.torch_leaf(path[-1]))
  return ".".join(parts)


def init_head(model_cfg: ml_collections.ConfigDict, seed: int = 0) -> PyTree:
  """Freshly initialised head params (PyTorch's default Conv3d init), for backbone-only files."""
  model = build_model(model_cfg)
  channels = int(model_cfg.embed_dim) * 2 ** (len(model_cfg.depths) - 1)
  feats = jnp.zeros((1, 1, 1, 1, channels), jnp.float32)
  return model.head.init(jax.random.key(seed), feats, train=False)["params"]


def fresh_leaf(path: tuple[str, ...], shape: tuple[int, ...], seed: int) -> np.ndarray:
  """The reference's init of a backbone leaf a checkpoint does not provide.

  Fragment tables zero; anything else (a relative table of another window size) trunc_normal(0.02),
  from `seed` and the leaf's path.
  """
  if path[-1] in ZERO_INIT_LEAVES:
    return np.zeros(shape, np.float32)
  key = jax.random.fold_in(jax.random.key(seed), zlib.crc32("/".join(path).encode()) % 2**31)
  return np.asarray(trunc_normal_init(0.02)(key, shape, jnp.float32))


def backbone_only_fill(head: PyTree, reinit_on_mismatch: tuple[str, ...] = (),
                       seed: int = 0) -> state_dicts.Fill:
  """`convert_tree`'s fill for a backbone-only file: `head` as given, fresh fragment tables.

  Leaves named in `reinit_on_mismatch` whose checkpoint shape does not fit are re-initialised
  (`fresh_leaf`), as the reference's loader keeps its init for keys of another shape.
  """
  head = flax.traverse_util.flatten_dict(head)

  def fill(path, leaf, value):
    if path[0] == "head":
      return np.asarray(head[path[1:]])
    if value is None and path[-1] in ZERO_INIT_LEAVES:
      return fresh_leaf(path, leaf.shape, seed)
    if value is not None and path[-1] in reinit_on_mismatch:
      return fresh_leaf(path, leaf.shape, seed)
    return None

  return fill
