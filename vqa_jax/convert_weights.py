"""PyTorch FAST-VQA / Video Swin-T checkpoints -> Flax params of `build_model`, saved with orbax.

  python -m vqa_jax.convert_weights --src=FAST_VQA_B_1*4.pth --dst=/tmp/fast_vqa_b_params
  python -m vqa_jax.convert_weights --src=FAST_VQA_M_1*4.pth --dst=/tmp/m --model=fast_vqa_m
  python -m vqa_jax.convert_weights --src=X.pth --dst=DIR --config=configs/fast_vqa_b.py

Two layouts are recognised (automatically, from the key prefixes):
  * the official FAST-VQA release: `fragments_backbone.*` and `vqa_head.*`;
  * the Kinetics-400 Video Swin-T checkpoint (`swin_tiny_patch244_window877_kinetics400_1k.pth`):
    `backbone.*`, its `cls_head.*` dropped. What it lacks keeps the reference's fresh init
    (paper §6.1): fragment bias tables zero, the head PyTorch's default Conv3d init
    U(+-1/sqrt(fan_in)) (from `--seed`), and, as the reference's loader drops keys whose shape
    does not fit (FAST-VQA-M's (4,4,4) window), relative bias tables trunc_normal(0.02).
Either may be wrapped in a `state_dict` entry. Buffers (`relative_position_index`, `attn_mask`)
are ignored. Any other key without a Flax counterpart, a Flax parameter without its key, or a
shape that does not fit is an error listing all of them (shapes in the PyTorch layout).

The model comes from `--config` (a config file), `--model` (a name from `MODEL_CONFIGS`), or,
by default, is inferred from the checkpoint (window size and fragment tables). FasterVQA has
exactly FAST-VQA-B's parameters. Conversion works on numpy arrays; torch is needed only to read
`.pth` files (`load_torch_state_dict`), never in training or scoring.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pathlib
import re
import zlib
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from vqa_jax.models.model import build_model
from vqa_jax.models.video_swin import trunc_normal_init

PyTree = Any

OFFICIAL_PREFIXES = {"backbone": "fragments_backbone", "head": "vqa_head"}
KINETICS_PREFIXES = {"backbone": "backbone", "head": None}
IGNORED_SUFFIXES = ("relative_position_index", "attn_mask")
DROPPED_PREFIXES = ("cls_head.",)
ZERO_INIT_LEAVES = ("fragment_position_bias_table",)
REINIT_ON_MISMATCH_LEAVES = ("relative_position_bias_table",)
CONFIGS_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
MODEL_CONFIGS = {name: CONFIGS_DIR / f"{name}.py"
                 for name in ("fast_vqa_b", "faster_vqa", "fast_vqa_m")}
# Relative table rows (2Wd-1)(2Wh-1)(2Ww-1) and fragment tables -> the model of `MODEL_CONFIGS`.
_MODEL_BY_TABLES = {(2535, True): "fast_vqa_b", (343, False): "fast_vqa_m"}
_INDEXED = re.compile(r"^([a-z]+)_(\d+)$")


# Entries that wrap the tensors in released checkpoints: FAST-VQA and most PyTorch code
# ('state_dict'), Microsoft's Swin releases ('model'), pytorchvideo ('model_state').
_WRAPPER_KEYS = ("state_dict", "model", "model_state")


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
  """The state_dict inside a checkpoint, without torch.nn.DataParallel's `module.` key prefix.

  That is its first `_WRAPPER_KEYS` entry holding a mapping, or the checkpoint itself.
  """
  for key in _WRAPPER_KEYS:
    if isinstance(checkpoint.get(key), Mapping):
      checkpoint = checkpoint[key]
      break
  if checkpoint and all(k.startswith("module.") for k in checkpoint):
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}
  return checkpoint


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


def _kernel_axes(leaf: str, ndim: int) -> tuple[int, ...] | None:
  """Axis permutation PyTorch -> Flax for a weight of rank `ndim` (None: same layout)."""
  if leaf == "kernel" and ndim == 2:  # Linear (out, in) -> Dense (in, out).
    return (1, 0)
  if leaf == "kernel" and ndim == 5:  # Conv3d (out, in, t, h, w) -> Conv (t, h, w, in, out).
    return (2, 3, 4, 1, 0)
  return None


def to_flax(leaf: str, value: np.ndarray) -> np.ndarray:
  """A PyTorch tensor in the layout of the Flax leaf `leaf` (kernels transposed; others as is)."""
  value = np.asarray(value, np.float32)
  axes = _kernel_axes(leaf, value.ndim)
  return value if axes is None else value.transpose(axes)


def to_torch(leaf: str, value: np.ndarray) -> np.ndarray:
  """Inverse of `to_flax`: a Flax leaf in PyTorch's layout."""
  value = np.asarray(value, np.float32)
  axes = _kernel_axes(leaf, value.ndim)
  return value if axes is None else value.transpose(np.argsort(axes))


def torch_shape(leaf: str, flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  """The PyTorch shape of a Flax leaf of shape `flax_shape`."""
  axes = _kernel_axes(leaf, len(flax_shape))
  return tuple(flax_shape) if axes is None else tuple(flax_shape[a] for a in np.argsort(axes))


def to_state_dict(params: PyTree, prefixes: Mapping[str, str | None] = None
                  ) -> dict[str, np.ndarray]:
  """Flax params -> PyTorch-layout state_dict (official FAST-VQA key names by default)."""
  prefixes = OFFICIAL_PREFIXES if prefixes is None else prefixes
  out = {}
  for path, value in flax.traverse_util.flatten_dict(params).items():
    key = torch_key(path, prefixes)
    if key is not None:
      out[key] = to_torch(path[-1], value)
  return out


def detect_layout(state_dict: Mapping[str, Any]) -> dict[str, str | None]:
  """The key prefixes of the checkpoint's layout (official FAST-VQA or Kinetics Video Swin)."""
  if any(k.startswith(OFFICIAL_PREFIXES["backbone"] + ".") for k in state_dict):
    return OFFICIAL_PREFIXES
  if any(k.startswith(KINETICS_PREFIXES["backbone"] + ".") for k in state_dict):
    return KINETICS_PREFIXES
  raise ValueError("no 'fragments_backbone.*' (FAST-VQA) or 'backbone.*' (Video Swin) keys; "
                   f"first keys: {sorted(state_dict)[:5]}")


def infer_model_name(state_dict: Mapping[str, Any]) -> str:
  """The `MODEL_CONFIGS` name whose model a checkpoint fits (FasterVQA reads as fast_vqa_b)."""
  state_dict = unwrap_state_dict(state_dict)
  prefix = detect_layout(state_dict)["backbone"] + ".layers.0.blocks.0.attn."
  table = state_dict.get(prefix + "relative_position_bias_table")
  if table is None:
    raise ValueError(f"cannot infer the model: no {prefix}relative_position_bias_table; "
                     "pass --model or --config")
  has_fragment_tables = (prefix + "fragment_position_bias_table" in state_dict
                         or detect_layout(state_dict) is KINETICS_PREFIXES)
  name = _MODEL_BY_TABLES.get((int(np.shape(table)[0]), has_fragment_tables))
  if name is None:
    raise ValueError(f"cannot infer the model from a relative table of shape {np.shape(table)} "
                     f"(fragment tables: {has_fragment_tables}); pass --model or --config")
  return name


def model_config(name: str) -> ml_collections.ConfigDict:
  """The model section of the repo config `configs/<name>.py` (a key of `MODEL_CONFIGS`)."""
  if name not in MODEL_CONFIGS:
    raise ValueError(f"unknown model {name!r}; choose from {sorted(MODEL_CONFIGS)}")
  path = MODEL_CONFIGS[name]
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found: --model needs the repository's configs/ folder "
                            "(or pass --config)")
  spec = importlib.util.spec_from_file_location(f"_convert_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config().model


def abstract_params(model_cfg: ml_collections.ConfigDict) -> PyTree:
  """Shapes of the params of `build_model(model_cfg)` (nothing is computed)."""
  model = build_model(model_cfg)
  num_stages = len(model_cfg.depths)
  pt, ps = model_cfg.patch_size[0], model_cfg.patch_size[1]
  side = ps * model_cfg.window_size[1] * 2 ** (num_stages - 1)
  video = jax.ShapeDtypeStruct((1, pt * model_cfg.window_size[0], side, side, 3), jnp.uint8)
  return jax.eval_shape(lambda v: model.init(jax.random.key(0), v, train=False), video)["params"]


def init_head(model_cfg: ml_collections.ConfigDict, seed: int = 0) -> PyTree:
  """Freshly initialised head params (PyTorch's default Conv3d init), for backbone-only files."""
  model = build_model(model_cfg)
  channels = int(model_cfg.embed_dim) * 2 ** (len(model_cfg.depths) - 1)
  feats = jnp.zeros((1, 1, 1, 1, channels), jnp.float32)
  return model.head.init(jax.random.key(seed), feats, train=False)["params"]


def _fresh_leaf(path: tuple[str, ...], shape: tuple[int, ...], seed: int) -> np.ndarray:
  """The reference's init of a backbone leaf a Kinetics checkpoint does not provide."""
  if path[-1] in ZERO_INIT_LEAVES:
    return np.zeros(shape, np.float32)
  key = jax.random.fold_in(jax.random.key(seed), zlib.crc32("/".join(path).encode()) % 2**31)
  return np.asarray(trunc_normal_init(0.02)(key, shape, jnp.float32))


def convert_state_dict(state_dict: Mapping[str, Any], model_cfg: ml_collections.ConfigDict,
                       seed: int = 0) -> PyTree:
  """Numpy PyTorch state_dict -> Flax params of `build_model(model_cfg)`; raises on mismatch.

  The ValueError lists every missing key, unknown key and shape mismatch (PyTorch layout).
  `seed` initialises what a Kinetics (backbone-only) checkpoint lacks.
  """
  state_dict = unwrap_state_dict(state_dict)
  prefixes = detect_layout(state_dict)
  kinetics = prefixes is KINETICS_PREFIXES
  remaining = {k: v for k, v in state_dict.items()
               if not k.endswith(IGNORED_SUFFIXES) and not k.startswith(DROPPED_PREFIXES)}
  flat_shapes = flax.traverse_util.flatten_dict(abstract_params(model_cfg))
  head = (flax.traverse_util.flatten_dict(init_head(model_cfg, seed)) if prefixes["head"] is None
          else None)
  flat, missing, mismatched, fresh = {}, [], [], []
  for path, abstract in flat_shapes.items():
    key = torch_key(path, prefixes)
    expected = torch_shape(path[-1], abstract.shape)
    if key is None:
      flat[path] = np.asarray(head[path[1:]], np.float32)
    elif key in remaining:
      value = np.asarray(remaining.pop(key))
      if value.shape == expected:
        flat[path] = to_flax(path[-1], value)
      elif kinetics and path[-1] in REINIT_ON_MISMATCH_LEAVES:
        flat[path] = _fresh_leaf(path, abstract.shape, seed)
        fresh.append(f"{key} {value.shape} -> {expected}")
      else:
        mismatched.append(f"{key}: checkpoint {value.shape}, model expects {expected}")
    elif kinetics and path[-1] in ZERO_INIT_LEAVES:
      flat[path] = _fresh_leaf(path, abstract.shape, seed)
    else:
      missing.append(key)
  if missing or remaining or mismatched:
    raise ValueError(
        "checkpoint does not match the model: "
        f"{len(missing)} missing keys {sorted(missing)}; "
        f"{len(remaining)} unknown keys {sorted(remaining)}; "
        f"{len(mismatched)} shape mismatches {mismatched}")
  if fresh:
    logging.warning("re-initialised %d relative tables of another window size, as the "
                    "reference's loader does: %s", len(fresh), fresh)
  return flax.traverse_util.unflatten_dict(flat)


def load_torch_state_dict(path: str, trust_pickle: bool = False) -> dict[str, np.ndarray]:
  """Reads a `.pth` file into numpy arrays (needs the optional torch dependency).

  Only tensors are loaded (`weights_only`) unless `trust_pickle`, which unpickles arbitrary
  objects: use it only for files from a source you trust.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such checkpoint file")
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"reading {path} needs PyTorch: pip install torch==2.13.0") from e
  try:
    checkpoint = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
  except Exception as e:  # pylint: disable=broad-except  (torch raises many kinds here)
    hint = "" if trust_pickle else " (if it holds non-tensor objects and you trust it: " \
                                   "--trust_pickle)"
    raise ValueError(f"{path}: not a readable PyTorch checkpoint{hint}: {e}") from e
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f"{path}: expected a dict of tensors, got {type(checkpoint).__name__}")
  return {k: v.detach().float().numpy() for k, v in unwrap_state_dict(checkpoint).items()
          if isinstance(v, torch.Tensor)}


def save_params(directory: str, params: PyTree) -> None:
  """Saves `{'params': params}` as an orbax checkpoint in `directory` (replacing it)."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(directory), {"params": params}, force=True)
  checkpointer.wait_until_finished()


def load_params(directory: str) -> PyTree:
  """The params saved by `save_params` (numpy-compatible jax arrays on the default device)."""
  return ocp.StandardCheckpointer().restore(os.path.abspath(directory))["params"]


def convert_file(src: str, dst: str, model_cfg: ml_collections.ConfigDict | None = None,
                 seed: int = 0, trust_pickle: bool = False) -> str:
  """Converts the `.pth` file `src` and saves the params in `dst`; returns the model used.

  `model_cfg=None` infers the model from the checkpoint (`infer_model_name`). Errors name `src`.
  """
  state_dict = load_torch_state_dict(src, trust_pickle)
  try:
    name = "config" if model_cfg is not None else infer_model_name(state_dict)
    params = convert_state_dict(state_dict, model_cfg or model_config(name), seed)
  except ValueError as e:
    raise ValueError(f"{src}: {e}") from e
  save_params(dst, params)
  return name


def main() -> None:
  """Command line: --src, --dst, and --model or --config (default: inferred)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  src = flags.DEFINE_string("src", None, "PyTorch checkpoint (.pth).")
  dst = flags.DEFINE_string("dst", None, "Output orbax checkpoint directory.")
  model = flags.DEFINE_enum("model", "auto", ["auto", *MODEL_CONFIGS],
                            "Model to build; 'auto' infers it from the checkpoint.")
  config = config_flags.DEFINE_config_file("config", None, "Config whose model to build "
                                           "(overrides --model).")
  seed = flags.DEFINE_integer("seed", 0, "Init seed of what a Kinetics checkpoint lacks (head).")
  trust_pickle = flags.DEFINE_bool("trust_pickle", False, "Unpickle non-tensor objects too "
                                   "(only for trusted files).")
  flags.mark_flags_as_required(["src", "dst"])

  def run(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if config.value is not None:
      model_cfg = config.value.model
    elif model.value != "auto":
      model_cfg = model_config(model.value)
    else:
      model_cfg = None
    used = convert_file(src.value, dst.value, model_cfg, seed.value, trust_pickle.value)
    print(f"saved {dst.value} (model: {used})")

  app.run(run)


if __name__ == "__main__":
  main()
