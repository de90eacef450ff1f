"""PyTorch FAST-VQA / Video Swin-T checkpoints -> Flax params of `build_model`, saved with orbax.

  python -m vqa_jax.convert_weights --src=FAST_VQA_B_1*4.pth --dst=/tmp/fast_vqa_b_params \
      [--config=configs/fast_vqa_b.py]

Two layouts are recognised:
  * the official FAST-VQA release: `fragments_backbone.*` and `vqa_head.*`;
  * the Kinetics-400 Video Swin-T checkpoint: `backbone.*` (its `cls_head.*` is dropped). As in
    the reference, the fragment bias tables it lacks stay zero and the head keeps its random init.
Either may be wrapped in a `state_dict` entry. Buffers (`relative_position_index`, `attn_mask`)
are ignored; any other key without a Flax counterpart, or a Flax parameter without its key, is an
error that lists them. Conversion works on numpy arrays; torch is needed only to read `.pth`.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from vqa_jax.models.model import build_model
from vqa_jax.models.model import fast_vqa_b_config

PyTree = Any

OFFICIAL_PREFIXES = {"backbone": "fragments_backbone", "head": "vqa_head"}
KINETICS_PREFIXES = {"backbone": "backbone", "head": None}
IGNORED_SUFFIXES = ("relative_position_index", "attn_mask")
DROPPED_PREFIXES = ("cls_head.",)
ZERO_INIT_LEAVES = ("fragment_position_bias_table",)
_INDEXED = re.compile(r"^([a-z]+)_(\d+)$")


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
  """The `state_dict` entry of a checkpoint when it has one, else the checkpoint itself."""
  inner = checkpoint.get("state_dict")
  return inner if isinstance(inner, Mapping) else checkpoint


def torch_key(path: tuple[str, ...], prefixes: Mapping[str, str | None]) -> str | None:
  """Flax param path ('backbone', 'layers_0', ..., 'kernel') -> PyTorch key (None: not stored)."""
  top = prefixes[path[0]]
  if top is None:
    return None
  parts = [top]
  for name in path[1:-1]:
    match = _INDEXED.match(name)
    parts.extend(match.groups() if match else (name,))
  leaf = path[-1]
  parts.append("weight" if leaf in ("kernel", "scale") else leaf)
  return ".".join(parts)


def to_flax(leaf: str, value: np.ndarray) -> np.ndarray:
  """A PyTorch tensor in the layout of the Flax leaf `leaf` (kernels transposed; others as is)."""
  value = np.asarray(value, np.float32)
  if leaf == "kernel" and value.ndim == 2:  # Linear (out, in) -> Dense (in, out).
    return value.T
  if leaf == "kernel" and value.ndim == 5:  # Conv3d (out, in, t, h, w) -> Conv (t, h, w, in, out).
    return value.transpose(2, 3, 4, 1, 0)
  return value


def detect_layout(state_dict: Mapping[str, Any]) -> dict[str, str | None]:
  """The key prefixes of the checkpoint's layout (official FAST-VQA or Kinetics Video Swin)."""
  if any(k.startswith(OFFICIAL_PREFIXES["backbone"] + ".") for k in state_dict):
    return OFFICIAL_PREFIXES
  if any(k.startswith(KINETICS_PREFIXES["backbone"] + ".") for k in state_dict):
    return KINETICS_PREFIXES
  raise ValueError("no 'fragments_backbone.*' (FAST-VQA) or 'backbone.*' (Video Swin) keys; "
                   f"first keys: {sorted(state_dict)[:5]}")


def abstract_params(model_cfg: ml_collections.ConfigDict) -> PyTree:
  """Shapes of the params of `build_model(model_cfg)` (nothing is computed)."""
  model = build_model(model_cfg)
  num_stages = len(model_cfg.depths)
  pt, ps = model_cfg.patch_size[0], model_cfg.patch_size[1]
  side = ps * model_cfg.window_size[1] * 2 ** (num_stages - 1)
  video = jax.ShapeDtypeStruct((1, pt * model_cfg.window_size[0], side, side, 3), jnp.uint8)
  return jax.eval_shape(lambda v: model.init(jax.random.key(0), v, train=False), video)["params"]


def init_head(model_cfg: ml_collections.ConfigDict, seed: int = 0) -> PyTree:
  """Freshly initialised head params (PyTorch-default-like init), for backbone-only checkpoints."""
  model = build_model(model_cfg)
  channels = int(model_cfg.embed_dim) * 2 ** (len(model_cfg.depths) - 1)
  feats = jnp.zeros((1, 1, 1, 1, channels), jnp.float32)
  return model.head.init(jax.random.key(seed), feats, train=False)["params"]


def convert_state_dict(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
                       seed: int = 0) -> PyTree:
  """Numpy PyTorch state_dict -> Flax params of `build_model(model_cfg)`; raises on key mismatch."""
  state_dict = unwrap_state_dict(state_dict)
  prefixes = detect_layout(state_dict)
  remaining = {k: v for k, v in state_dict.items()
               if not k.endswith(IGNORED_SUFFIXES) and not k.startswith(DROPPED_PREFIXES)}
  flat_shapes = flax.traverse_util.flatten_dict(abstract_params(model_cfg))
  head = None if prefixes["head"] else flax.traverse_util.flatten_dict(init_head(model_cfg, seed))
  flat, missing, mismatched = {}, [], []
  for path, shape in flat_shapes.items():
    key = torch_key(path, prefixes)
    if key is None:
      flat[path] = np.asarray(head[path[1:]], np.float32)
    elif key in remaining:
      value = np.asarray(remaining.pop(key))
      converted = to_flax(path[-1], value)
      if converted.shape != shape.shape:
        mismatched.append(f"{key}: {value.shape} does not fit {shape.shape}")
      flat[path] = converted
    elif path[-1] in ZERO_INIT_LEAVES and prefixes is KINETICS_PREFIXES:
      flat[path] = np.zeros(shape.shape, np.float32)
    else:
      missing.append(key)
  if missing or remaining or mismatched:
    raise ValueError(f"checkpoint does not match the model: missing keys {sorted(missing)}; "
                     f"unknown keys {sorted(remaining)}; shape mismatches {mismatched}")
  return flax.traverse_util.unflatten_dict(flat)


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """Reads a `.pth` file into numpy arrays (needs the optional torch dependency)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("reading .pth files needs PyTorch: pip install torch") from e
  checkpoint = unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))
  return {k: v.detach().float().numpy() for k, v in checkpoint.items()
          if isinstance(v, torch.Tensor)}


def save_params(directory: str, params: PyTree) -> None:
  """Saves `{'params': params}` as an orbax checkpoint in `directory` (replacing it)."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(directory), {"params": params}, force=True)
  checkpointer.wait_until_finished()


def load_params(directory: str) -> PyTree:
  """The params saved by `save_params` (numpy-compatible jax arrays on the default device)."""
  return ocp.StandardCheckpointer().restore(os.path.abspath(directory))["params"]


def convert_file(src: str, dst: str, model_cfg: ml_collections.ConfigDict) -> None:
  """Converts the `.pth` file `src` for `model_cfg` and saves the params in `dst`."""
  save_params(dst, convert_state_dict(load_torch_state_dict(src), model_cfg))


def main() -> None:
  """Command line: --src, --dst and an optional --config whose model to build (default B)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  src = flags.DEFINE_string("src", None, "PyTorch checkpoint (.pth).")
  dst = flags.DEFINE_string("dst", None, "Output orbax checkpoint directory.")
  config = config_flags.DEFINE_config_file("config", None, "Config whose model to build "
                                           "(default: FAST-VQA-B).")
  flags.mark_flags_as_required(["src", "dst"])

  def run(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    model_cfg = fast_vqa_b_config() if config.value is None else config.value.model
    convert_file(src.value, dst.value, model_cfg)
    print(f"saved {dst.value}")

  app.run(run)


if __name__ == "__main__":
  main()
