"""PyTorch ResNet-50 (torchvision) and SlowFast-R50 (pytorchvideo) state_dicts -> Flax variables.

  params, batch_stats = convert_resnet50_state_dict(load_pth("resnet50-19c8e357.pth"))
  params, batch_stats = convert_slowfast_r50_state_dict(load_pth("SLOWFAST_8x8_R50.pyth"))
  variables = convert_simple_vqa_state_dict(load_pth("SimpleVQA.pth"))  # a trained SimpleVQA

The result fits `models.resnet.ResNet` / `models.slowfast.SlowFast` (by default the full-size
`resnet50()` / `slowfast_r50()`; pass `model=` for another width or depth). Convolution weights
are transposed to Flax's channels-last layout, BatchNorm `weight`/`bias` become params `scale`/`bias`
and `running_mean`/`running_var` become batch_stats `mean`/`var`; `num_batches_tracked` is ignored,
and the classifiers (torchvision `fc.*`, pytorchvideo head `blocks.6.*`) are dropped. Any other key
without a Flax counterpart, a Flax variable without its key, or a shape mismatch is an error that
lists them all. The conversion is numpy only; torch is imported (lazily) just to read a file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import re
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax import convert_weights
from vqa_jax.models.resnet import ResNet
from vqa_jax.models.resnet import resnet50
from vqa_jax.models.simple_vqa import POOLED_STAGES
from vqa_jax.models.simple_vqa import simple_vqa_config
from vqa_jax.models import slowfast as slowfast_lib
from vqa_jax.models.slowfast import SlowFast

PyTree = Any
FlaxKey = tuple[str, tuple[str, ...]]  # (collection, path)

IGNORED_SUFFIXES = (".num_batches_tracked",)
RESNET_DROPPED_PREFIXES = ("fc.",)
SLOWFAST_DROPPED_PREFIXES = ("blocks.6.",)  # ResNetBasicHead: the Kinetics-400 classifier.
_LEAVES = {"bias": ("params", "bias"), "running_mean": ("batch_stats", "mean"),
           "running_var": ("batch_stats", "var")}
_PATHWAYS = ("slow", "fast")

_RESNET_STEM = re.compile(r"^(conv1|bn1)$")
_RESNET_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.(conv\d|bn\d|downsample\.0|downsample\.1)$")
_RESNET_DOWNSAMPLE = {"downsample.0": "downsample_conv", "downsample.1": "downsample_bn"}
_SF_STEM = re.compile(r"^blocks\.0\.multipathway_blocks\.([01])\.(conv|norm)$")
_SF_FUSION = re.compile(r"^blocks\.(\d+)\.multipathway_fusion\.(conv_fast_to_slow|norm)$")
_SF_BLOCK = re.compile(r"^blocks\.(\d+)\.multipathway_blocks\.([01])\.res_blocks\.(\d+)\."
                       r"(branch1_conv|branch1_norm|branch2\.(?:conv|norm)_[abc])$")


def _flax_leaf(leaf: str, ndim: int) -> tuple[str, str] | None:
  """PyTorch leaf name -> (collection, Flax leaf): conv `weight` -> kernel, norm `weight` -> scale."""
  if leaf == "weight":
    return ("params", "kernel" if ndim > 1 else "scale")
  return _LEAVES.get(leaf)


def resnet_module_path(module: str) -> tuple[str, ...] | None:
  """torchvision module name ('layer2.0.downsample.0') -> Flax module path; None if unknown."""
  if _RESNET_STEM.match(module):
    return (module,)
  match = _RESNET_BLOCK.match(module)
  if match is None:
    return None
  stage, block, layer = match.groups()
  return (f"layer{stage}_{block}", _RESNET_DOWNSAMPLE.get(layer, layer))


def slowfast_module_path(module: str) -> tuple[str, ...] | None:
  """pytorchvideo module name -> Flax module path of `SlowFast`; None if unknown."""
  if match := _SF_STEM.match(module):
    pathway, layer = match.groups()
    return (f"stem_{_PATHWAYS[int(pathway)]}", layer)
  if match := _SF_FUSION.match(module):
    stage, layer = match.groups()
    return (f"fusion_{stage}", "conv" if layer == "conv_fast_to_slow" else "norm")
  if match := _SF_BLOCK.match(module):
    stage, pathway, block, layer = match.groups()
    return (f"stage{stage}_{_PATHWAYS[int(pathway)]}", f"block_{block}",
            layer.removeprefix("branch2."))
  return None


def to_flax_layout(value: np.ndarray) -> np.ndarray:
  """Conv (O, I, *K) -> Flax (*K, I, O); Linear (O, I) -> (I, O); 1-D unchanged; float32 numpy."""
  value = np.asarray(value, np.float32)
  if value.ndim >= 2:
    return value.transpose(tuple(range(2, value.ndim)) + (1, 0))
  return value


def convert_state_dict(state_dict: Mapping[str, Any],
                       module_path: Callable[[str], tuple[str, ...] | None],
                       dropped_prefixes: tuple[str, ...],
                       abstract: Mapping[str, PyTree]) -> tuple[PyTree, PyTree]:
  """State_dict -> (params, batch_stats) matching `abstract` (eval_shape of init); raises on mismatch."""
  expected = {(collection, path): leaf.shape
              for collection in ("params", "batch_stats")
              for path, leaf in flax.traverse_util.flatten_dict(abstract[collection]).items()}
  converted: dict[FlaxKey, np.ndarray] = {}
  unknown, mismatched = [], []
  for key, value in convert_weights.unwrap_state_dict(state_dict).items():
    if key.endswith(IGNORED_SUFFIXES) or key.startswith(dropped_prefixes):
      continue
    module, _, leaf = key.rpartition(".")
    value = np.asarray(value)
    path, flax_leaf = module_path(module), _flax_leaf(leaf, value.ndim)
    target = None if path is None or flax_leaf is None else (flax_leaf[0], path + (flax_leaf[1],))
    if target not in expected:
      unknown.append(key)
      continue
    array = to_flax_layout(value)
    if array.shape != tuple(expected[target]):
      mismatched.append(f"{key}: {value.shape} does not fit {'/'.join(target[1])} "
                        f"{tuple(expected[target])}")
    converted[target] = array
  missing = sorted("/".join((c,) + p) for c, p in expected.keys() - converted.keys())
  if unknown or missing or mismatched:
    raise ValueError(f"checkpoint does not match the model: unknown keys {sorted(unknown)}; "
                     f"missing Flax variables {missing}; shape mismatches {mismatched}")
  return tuple(flax.traverse_util.unflatten_dict({p: v for (c, p), v in converted.items()
                                                  if c == collection})
               for collection in ("params", "batch_stats"))


def abstract_resnet(model: ResNet) -> PyTree:
  """Shapes of a ResNet's variables (eval_shape; nothing is computed)."""
  images = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)


def abstract_slowfast(model: SlowFast) -> PyTree:
  """Shapes of a SlowFast's variables (eval_shape with a clip just large enough for its pool)."""
  return jax.eval_shape(lambda s, f: model.init(jax.random.key(0), s, f),
                        *slowfast_lib.example_clips(model))


def convert_resnet50_state_dict(state_dict: Mapping[str, Any],
                                model: ResNet | None = None) -> tuple[PyTree, PyTree]:
  """torchvision ResNet(-50) state_dict (numpy values) -> (params, batch_stats); `fc.*` dropped."""
  model = resnet50() if model is None else model
  return convert_state_dict(state_dict, resnet_module_path, RESNET_DROPPED_PREFIXES,
                            abstract_resnet(model))


def convert_slowfast_r50_state_dict(state_dict: Mapping[str, Any],
                                    model: SlowFast | None = None) -> tuple[PyTree, PyTree]:
  """pytorchvideo SlowFast(-R50) state_dict -> (params, batch_stats); the head `blocks.6.*` dropped."""
  model = slowfast_lib.slowfast_r50() if model is None else model
  return convert_state_dict(state_dict, slowfast_module_path, SLOWFAST_DROPPED_PREFIXES,
                            abstract_slowfast(model))


def convert_simple_vqa_state_dict(state_dict: Mapping[str, Any],
                                  model_cfg: ml_collections.ConfigDict | None = None) -> PyTree:
  """A SimpleVQA checkpoint (torchvision trunk + `quality.{0,1}` regressor) -> Flax variables.

  Returns {'params': {'backbone', 'head'}, 'batch_stats': {'backbone'}} for
  `build_simple_vqa(model_cfg)` (default: the reference config).
  """
  model_cfg = simple_vqa_config() if model_cfg is None else model_cfg
  state_dict = convert_weights.unwrap_state_dict(state_dict)
  head_keys = {f"quality.{i}.{leaf}": (name, flax_leaf)
               for i, name in enumerate(("hidden", "out"))
               for leaf, flax_leaf in (("weight", "kernel"), ("bias", "bias"))}
  missing = sorted(head_keys.keys() - state_dict.keys())
  if missing:
    raise ValueError(f"checkpoint does not match the model: missing regressor keys {missing}")
  head: dict[str, dict[str, np.ndarray]] = {}
  for key, (name, flax_leaf) in head_keys.items():
    head.setdefault(name, {})[flax_leaf] = to_flax_layout(state_dict[key])
  trunk = ResNet(tuple(model_cfg.stage_sizes), int(model_cfg.width))
  params, batch_stats = convert_resnet50_state_dict(
      {k: v for k, v in state_dict.items() if k not in head_keys}, trunk)
  expected_in = 2 * sum(int(model_cfg.width) * 4 * 2**i for i in POOLED_STAGES)
  expected = {"hidden": {"kernel": (expected_in + int(model_cfg.motion_dim), int(model_cfg.hidden)),
                         "bias": (int(model_cfg.hidden),)},
              "out": {"kernel": (int(model_cfg.hidden), 1), "bias": (1,)}}
  mismatched = [f"{name}/{leaf}: {head[name][leaf].shape} != {shape}"
                for name, leaves in expected.items() for leaf, shape in leaves.items()
                if head[name][leaf].shape != shape]
  if mismatched:
    raise ValueError(f"checkpoint does not match the model: shape mismatches {mismatched}")
  return {"params": {"backbone": params, "head": head}, "batch_stats": {"backbone": batch_stats}}


def load_pth(path: str, trust_pickle: bool = False) -> dict[str, np.ndarray]:
  """Reads a `.pth`/`.pyth` checkpoint into numpy arrays (needs the optional torch dependency)."""
  arrays = convert_weights.load_torch_state_dict(path, trust_pickle)
  if not arrays:
    raise ValueError(f"{path}: no tensors found")
  return arrays