"""ImageNet Swin-T (2D, Microsoft layout) -> backbone params of the IQA model (1-frame Video Swin).

  python -m vqa_jax.convert_swin2d --src=swin_tiny_patch4_window7_224.pth --dst=/tmp/swin_t_iqa
  python -m vqa_jax.convert_swin2d --src=X.pth --dst=DIR --config=configs/iqa_swin_t.py

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
ignored); `build_model` does not build that backbone yet, so there is no CLI path for it.

Numpy core; torch is imported only to read a `.pth` (`convert_weights.load_torch_state_dict`), never in training.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any, Mapping

import flax
import ml_collections
import numpy as np

from vqa_jax import convert_weights

PyTree = Any

BACKBONE_PREFIX = "backbone."  # convert_weights.torch_key's Kinetics names start with it.
DROPPED_PREFIXES = ("head.",)
IGNORED_SUFFIXES = convert_weights.IGNORED_SUFFIXES + ("relative_coords_table",)
_CPB_LAYER = re.compile(r"\bcpb_mlp_(\d+)\b")  # Flax 'cpb_mlp_0' <-> PyTorch 'cpb_mlp.0'.
ZERO_INIT_LEAVES = convert_weights.ZERO_INIT_LEAVES


def swin2d_key(path: tuple[str, ...]) -> str | None:
  """Flax backbone path -> the 2D Swin key ('layers.0.blocks.1.attn.qkv.weight'); None: head."""
  key = convert_weights.torch_key(path, convert_weights.KINETICS_PREFIXES)
  return None if key is None else _CPB_LAYER.sub(r"cpb_mlp.\1", key[len(BACKBONE_PREFIX):])


def to_flax(leaf: str, value: np.ndarray) -> np.ndarray:
  """A 2D Swin tensor in the Flax layout: Conv2d (o, i, h, w) gains a temporal axis of size 1."""
  value = np.asarray(value, np.float32)
  if leaf == "kernel" and value.ndim == 4:
    value = value[:, :, None]
  return convert_weights.to_flax(leaf, value)


def to_swin2d(leaf: str, value: np.ndarray) -> np.ndarray:
  """Inverse of `to_flax` (a T=1 Conv3d kernel loses its temporal axis)."""
  value = convert_weights.to_torch(leaf, value)
  if leaf == "kernel" and value.ndim == 5:
    if value.shape[2] != 1:
      raise ValueError(f"a Conv3d kernel of temporal size {value.shape[2]} has no 2D form")
    value = value[:, :, 0]
  return value


def swin2d_shape(leaf: str, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  """The 2D Swin shape of a Flax leaf (a Conv3d kernel's temporal size 1 dropped)."""
  shape = convert_weights.torch_shape(leaf, flax_shape)
  if leaf == "kernel" and len(shape) == 5 and shape[2] == 1:
    shape = shape[:2] + shape[3:]
  return shape


def check_model(model_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless the model is 1-frame (temporal patch and window 1)."""
  if model_cfg.patch_size[0] != 1 or model_cfg.window_size[0] != 1:
    raise ValueError(f"2D Swin weights need temporal patch 1 and window 1, got patch_size "
                     f"{tuple(model_cfg.patch_size)} and window_size "
                     f"{tuple(model_cfg.window_size)}")


def convert_state_dict(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
                       seed: int = 0) -> PyTree:
  """Numpy 2D Swin state_dict -> Flax params of `build_model(model_cfg)`; raises on mismatch."""
  check_model(model_cfg)
  return convert_tree(state_dict, convert_weights.abstract_params(model_cfg),
                      convert_weights.init_head(model_cfg, seed))


def convert_tree(state_dict: Mapping[str, Any], abstract: PyTree, head: PyTree) -> PyTree:
  """2D Swin (V1 or V2) state_dict onto `abstract` {'backbone', 'head'} shapes; `head` as given.

  The ValueError lists every missing key, unknown key and shape mismatch (PyTorch layout).
  """
  remaining = {k: v for k, v in convert_weights.unwrap_state_dict(state_dict).items()
               if not k.endswith(IGNORED_SUFFIXES) and not k.startswith(DROPPED_PREFIXES)}
  flat_shapes = flax.traverse_util.flatten_dict(abstract)
  head = flax.traverse_util.flatten_dict(head)
  flat, missing, mismatched = {}, [], []
  for path, abstract in flat_shapes.items():
    key = swin2d_key(path)
    expected = swin2d_shape(path[-1], abstract.shape)
    if key is None:
      flat[path] = np.asarray(head[path[1:]], np.float32)
    elif key in remaining:
      value = np.asarray(remaining.pop(key))
      if value.shape == expected:
        flat[path] = to_flax(path[-1], value)
      else:
        mismatched.append(f"{key}: checkpoint {value.shape}, model expects {expected}")
    elif path[-1] in ZERO_INIT_LEAVES:
      flat[path] = np.zeros(abstract.shape, np.float32)
    else:
      missing.append(key)
  if missing or remaining or mismatched:
    raise ValueError(
        "checkpoint does not match the model: "
        f"{len(missing)} missing keys {sorted(missing)}; "
        f"{len(remaining)} unknown keys {sorted(remaining)}; "
        f"{len(mismatched)} shape mismatches {mismatched}")
  return flax.traverse_util.unflatten_dict(flat)


def to_state_dict(params: PyTree) -> dict[str, np.ndarray]:
  """Backbone params -> the 2D Swin state_dict (no buffers, no classifier head)."""
  out = {}
  for path, value in flax.traverse_util.flatten_dict(params).items():
    key = swin2d_key(path)
    if key is not None and path[-1] not in ZERO_INIT_LEAVES:
      out[key] = to_swin2d(path[-1], value)
  return out


def iqa_model_config() -> ml_collections.ConfigDict:
  """The model section of configs/iqa_swin_t.py."""
  path = convert_weights.CONFIGS_DIR / "iqa_swin_t.py"
  spec = importlib.util.spec_from_file_location("_convert_swin2d_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config().model


def convert_file(src: str, dst: str, model_cfg: ml_collections.ConfigDict | None = None,
                 seed: int = 0, trust_pickle: bool = False) -> None:
  """Converts the `.pth` file `src` for `model_cfg` (default: iqa_swin_t's) into `dst`."""
  state_dict = convert_weights.load_torch_state_dict(src, trust_pickle)
  try:
    params = convert_state_dict(state_dict, model_cfg or iqa_model_config(), seed)
  except ValueError as e:
    raise ValueError(f"{src}: {e}") from e
  convert_weights.save_params(dst, params)


def main() -> None:
  """Command line: --src, --dst, optional --config (default configs/iqa_swin_t.py)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  src = flags.DEFINE_string("src", None, "2D Swin-T PyTorch checkpoint (.pth).")
  dst = flags.DEFINE_string("dst", None, "Output orbax checkpoint directory.")
  config = config_flags.DEFINE_config_file("config", None, "Config whose model to build "
                                           "(default configs/iqa_swin_t.py).")
  seed = flags.DEFINE_integer("seed", 0, "Init seed of the VQA head.")
  trust_pickle = flags.DEFINE_bool("trust_pickle", False, "Unpickle non-tensor objects too "
                                   "(only for trusted files).")
  flags.mark_flags_as_required(["src", "dst"])

  def run(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    model_cfg = config.value.model if config.value is not None else None
    convert_file(src.value, dst.value, model_cfg, seed.value, trust_pickle.value)
    print(f"saved {dst.value}")

  app.run(run)


if __name__ == "__main__":
  main()
