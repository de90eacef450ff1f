"""ImageNet Swin-T (2D, Microsoft layout) -> backbone params of the IQA model (1-frame Video Swin).

  python -m vqa_jax.convert_weights --src=swin_tiny_patch4_window7_224.pth --dst=/tmp/swin_t_iqa
  python -m vqa_jax.convert_weights --src=X.pth --dst=DIR --format=swin2d \
      --config=configs/iqa_swin_t.py

The checkpoint (microsoft/Swin-Transformer release, `{'model': state_dict}`) holds
`patch_embed.proj` (Conv2d 3->96, 4x4), `patch_embed.norm`, `layers.N.blocks.M.{norm1, attn.qkv,
attn.proj, attn.relative_position_bias_table ((2*7-1)**2 = 169, heads), norm2, mlp.fc1, mlp.fc2}`,
`layers.N.downsample.{norm, reduction}` (N < 3), `norm` and the ImageNet classifier `head.*`
(dropped). The target is `build_model(config.model)` with temporal patch 1 and window (1, 7, 7):
the Conv2d kernel becomes a Conv3d kernel of temporal size 1 (no inflation needed), the 169-row
tables are used as they are (a (1, 7, 7) window's index is the 2D index: the temporal offset is
always 0), Linear weights are transposed. Buffers (`relative_position_index`, `attn_mask`) are
ignored. What the checkpoint lacks keeps the reference's fresh init: fragment tables (if the
config turns GRPB on) zero, the VQA head PyTorch's default init from `--seed`. Any other key, a
missing one or a shape that does not fit is an error listing all of them.

Swin-V2 checkpoints (`swinv2_tiny_patch4_window8_256.pth`, SAMA's IQA init) map onto
`models/swin_v2.SwinTransformerV2` params with `convert_tree` (their extra leaves `logit_scale`,
`q_bias`, `v_bias`, `cpb_mlp.{0,2}` keep their names; the `relative_coords_table` buffer is
ignored); `build_model` builds it for `model.backbone='swin_v2'`, so `--format=swin2d
--config=configs/iqa_swin_v2.py` converts `swinv2_tiny_patch4_window8_256.pth`.

Numpy core; torch is needed only to read a `.pth` (`state_dicts.read_state_dict`), never in
training.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import flax
import ml_collections
import numpy as np

from vqa_jax import families
from vqa_jax.convert import state_dicts
from vqa_jax.convert import swin_layout

PyTree = Any

PREFIXES = {"backbone": "", "head": None}  # Backbone keys are top-level; the VQA head is new.
DROPPED_PREFIXES = ("head.",)  # The ImageNet classifier.
IGNORED_SUFFIXES = swin_layout.BUFFER_SUFFIXES + ("relative_coords_table",)
_CPB_LAYER = re.compile(r"\bcpb_mlp_(\d+)\b")  # Flax 'cpb_mlp_0' <-> PyTorch 'cpb_mlp.0'.


def swin2d_key(path: tuple[str, ...]) -> str | None:
  """Flax params path -> the 2D Swin key ('layers.0.blocks.1.attn.qkv.weight'); None: head."""
  key = swin_layout.swin_key(path, PREFIXES)
  return None if key is None else _CPB_LAYER.sub(r"cpb_mlp.\1", key)


def to_flax(leaf: str, value: np.ndarray) -> np.ndarray:
  """A 2D Swin tensor in the Flax layout: Conv2d (o, i, h, w) gains a temporal axis of size 1."""
  value = np.asarray(value, np.float32)
  if leaf == "kernel" and value.ndim == 4:
    value = value[:, :, None]
  return state_dicts.to_flax(leaf, value)


def to_swin2d(leaf: str, value: np.ndarray) -> np.ndarray:
  """Inverse of `to_flax` (a T=1 Conv3d kernel loses its temporal axis)."""
  value = state_dicts.to_torch(leaf, value)
  if leaf == "kernel" and value.ndim == 5:
    if value.shape[2] != 1:
      raise ValueError(f"a Conv3d kernel of temporal size {value.shape[2]} has no 2D form")
    value = value[:, :, 0]
  return value


def swin2d_shape(leaf: str, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  """The 2D Swin shape of a Flax leaf (a Conv3d kernel's temporal size 1 dropped)."""
  shape = state_dicts.torch_shape(leaf, flax_shape)
  if leaf == "kernel" and len(shape) == 5 and shape[2] == 1:
    shape = shape[:2] + shape[3:]
  return shape


LAYOUT = state_dicts.Layout(swin2d_key, IGNORED_SUFFIXES, DROPPED_PREFIXES, to_flax, swin2d_shape)


def check_model(model_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless the model is 1-frame (temporal patch and window 1)."""
  if model_cfg.patch_size[0] != 1 or model_cfg.window_size[0] != 1:
    raise ValueError(f"2D Swin weights need temporal patch 1 and window 1, got patch_size "
                     f"{tuple(model_cfg.patch_size)} and window_size "
                     f"{tuple(model_cfg.window_size)}")


def convert(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
            seed: int = 0) -> state_dicts.Converted:
  """Numpy 2D Swin state_dict -> params of `build_model(model_cfg)` and the leaves initialised."""
  check_model(model_cfg)
  return convert_to(state_dict, families.abstract_variables(model_cfg)["params"],
                    swin_layout.init_head(model_cfg, seed))


def convert_state_dict(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
                       seed: int = 0) -> PyTree:
  """Numpy 2D Swin state_dict -> Flax params of `build_model(model_cfg)`; raises on mismatch."""
  return convert(state_dict, model_cfg, seed).tree


def convert_to(state_dict: Mapping[str, Any], abstract: PyTree,
               head: PyTree) -> state_dicts.Converted:
  """2D Swin (V1 or V2) state_dict onto `abstract` {'backbone', 'head'} shapes; `head` as given.

  Fragment tables the file lacks are zero. The ValueError lists every missing key, unknown key
  and shape mismatch (PyTorch layout).
  """
  return state_dicts.convert_tree(state_dict, abstract, LAYOUT,
                                  swin_layout.backbone_only_fill(head))


def convert_tree(state_dict: Mapping[str, Any], abstract: PyTree, head: PyTree) -> PyTree:
  """The params of `convert_to` (2D Swin V1 or V2 state_dict; `head` as given)."""
  return convert_to(state_dict, abstract, head).tree


def to_state_dict(params: PyTree) -> dict[str, np.ndarray]:
  """Backbone params -> the 2D Swin state_dict (no buffers, no classifier head)."""
  out = {}
  for path, value in flax.traverse_util.flatten_dict(params).items():
    key = swin2d_key(path)
    if key is not None and path[-1] not in swin_layout.ZERO_INIT_LEAVES:
      out[key] = to_swin2d(path[-1], value)
  return out
