"""PyTorch ResNet-50 (torchvision), SlowFast-R50 (pytorchvideo) and SimpleVQA -> Flax variables.

  python -m vqa_jax.convert_weights --src=resnet50-19c8e357.pth --dst=DIR   # format resnet50
  python -m vqa_jax.convert_weights --src=SLOWFAST_8x8_R50.pyth --dst=DIR   # slowfast_r50
  python -m vqa_jax.convert_weights --src=SimpleVQA.pth --dst=DIR           # simple_vqa

The library functions behind those formats (numpy in, numpy out):
  variables = simple_vqa_from_resnet50(state_dict, seed=0).tree       # ImageNet trunk + new head
  params, batch_stats = convert_slowfast_r50_state_dict(state_dict)
  variables = convert_simple_vqa_state_dict(state_dict)                # a trained SimpleVQA

The results fit `models.slowfast.SlowFast` (by default the full-size `slowfast_r50()`; pass
`model=` for another width or depth) and `models.simple_vqa.build_simple_vqa(model_cfg)` (the
torchvision trunk keys through `resnet_key`). Convolution weights are transposed to Flax's
channels-last layout, BatchNorm `weight`/`bias` become params `scale`/`bias` and
`running_mean`/`running_var` become batch_stats `mean`/`var`; `num_batches_tracked` is ignored, and
the classifiers (torchvision `fc.*`, pytorchvideo head `blocks.6.*`) are dropped. An ImageNet
ResNet-50 for SimpleVQA gets the regressor `head` freshly initialised as PyTorch's nn.Linear
default, U(+-1/sqrt(fan_in)) from `seed` (paper §6.3). Any other key, a missing one or a shape
mismatch is an error listing them all (`state_dicts.convert_tree`).
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax import families
from vqa_jax.convert import state_dicts
from vqa_jax.models import simple_vqa
from vqa_jax.models import slowfast as slowfast_lib
from vqa_jax.models.slowfast import SlowFast

PyTree = Any

BN_BUFFERS = (".num_batches_tracked",)
RESNET_DROPPED_PREFIXES = ("fc.",)
SLOWFAST_DROPPED_PREFIXES = ("blocks.6.",)  # ResNetBasicHead: the Kinetics-400 classifier.
REGRESSOR_KEYS = {"hidden": "quality.0", "out": "quality.1"}  # SimpleVQA's nn.Sequential.
_PATHWAYS = {"slow": 0, "fast": 1}
_RESNET_MODULES = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
_RESNET_BLOCK = re.compile(r"^layer(\d+)_(\d+)$")
_SF_STEM = re.compile(r"^stem_(slow|fast)$")
_SF_FUSION = re.compile(r"^fusion_(\d+)$")
_SF_STAGE = re.compile(r"^stage(\d+)_(slow|fast)$")
_SF_BLOCK = re.compile(r"^block_(\d+)$")


def resnet_key(path: tuple[str, ...]) -> str:
  """Flax (collection, module..., leaf) of `ResNet` -> torchvision key ('layer2.0.conv1.weight')."""
  _, *modules, leaf = path
  names = [_RESNET_MODULES.get(m) or _RESNET_BLOCK.sub(r"layer\1.\2", m) for m in modules]
  return ".".join(names + [state_dicts.torch_leaf(leaf)])


def slowfast_key(path: tuple[str, ...]) -> str | None:
  """Flax (collection, module..., leaf) of `SlowFast` -> pytorchvideo key; None if unknown."""
  _, first, *inner, leaf = path
  leaf = state_dicts.torch_leaf(leaf)
  if match := _SF_STEM.match(first):
    module = f"blocks.0.multipathway_blocks.{_PATHWAYS[match[1]]}.{inner[0]}"
  elif match := _SF_FUSION.match(first):
    layer = "conv_fast_to_slow" if inner[0] == "conv" else inner[0]
    module = f"blocks.{match[1]}.multipathway_fusion.{layer}"
  elif (match := _SF_STAGE.match(first)) and (block := _SF_BLOCK.match(inner[0])):
    layer = inner[1] if inner[1].startswith("branch1") else f"branch2.{inner[1]}"
    module = (f"blocks.{match[1]}.multipathway_blocks.{_PATHWAYS[match[2]]}.res_blocks."
              f"{block[1]}.{layer}")
  else:
    return None
  return f"{module}.{leaf}"


def simple_vqa_key(path: tuple[str, ...]) -> str:
  """Flax path of `SimpleVQA` -> key of the reference checkpoint (trunk keys + `quality.{0,1}`)."""
  collection, group, *rest = path
  if group == "head":
    return f"{REGRESSOR_KEYS[rest[0]]}.{state_dicts.torch_leaf(rest[-1])}"
  return resnet_key((collection, *rest))


def imagenet_trunk_key(path: tuple[str, ...]) -> str | None:
  """`simple_vqa_key` for an ImageNet ResNet-50 file: the trunk only (the head is not stored)."""
  return None if path[1] == "head" else simple_vqa_key(path)


SLOWFAST_LAYOUT = state_dicts.Layout(slowfast_key, BN_BUFFERS, SLOWFAST_DROPPED_PREFIXES)
SIMPLE_VQA_LAYOUT = state_dicts.Layout(simple_vqa_key, BN_BUFFERS, RESNET_DROPPED_PREFIXES)
IMAGENET_SIMPLE_VQA_LAYOUT = state_dicts.Layout(imagenet_trunk_key, BN_BUFFERS,
                                                RESNET_DROPPED_PREFIXES)


def abstract_slowfast(model: SlowFast) -> PyTree:
  """Shapes of a SlowFast's variables (eval_shape with a clip just large enough for its pool).

  Not a model family's (`families.abstract_variables`): SlowFast is the frozen motion-feature
  extractor in front of SimpleVQA, with its own checkpoint (`config.motion.weights`).
  """
  return jax.eval_shape(lambda s, f: model.init(jax.random.key(0), s, f),
                        *slowfast_lib.example_clips(model))


def slowfast_from_config(motion_cfg: ml_collections.ConfigDict) -> SlowFast:
  """The SlowFast of a `config.motion` section (configs/simple_vqa.py: slowfast_r50's fields)."""
  return SlowFast(tuple(motion_cfg.stage_sizes), int(motion_cfg.width),
                  head_pool=tuple(tuple(w) for w in motion_cfg.head_pool))


def convert_slowfast_r50_state_dict(state_dict: Mapping[str, Any],
                                    model: SlowFast | None = None) -> tuple[PyTree, PyTree]:
  """pytorchvideo SlowFast(-R50) state_dict -> (params, batch_stats); head `blocks.6.*` dropped."""
  model = slowfast_lib.slowfast_r50() if model is None else model
  variables = state_dicts.convert_tree(state_dict, abstract_slowfast(model), SLOWFAST_LAYOUT).tree
  return variables["params"], variables["batch_stats"]


def convert_simple_vqa_state_dict(state_dict: Mapping[str, Any],
                                  model_cfg: ml_collections.ConfigDict | None = None) -> PyTree:
  """A SimpleVQA checkpoint (torchvision trunk + `quality.{0,1}` regressor) -> Flax variables.

  Returns {'params': {'backbone', 'head'}, 'batch_stats': {'backbone'}} for
  `build_simple_vqa(model_cfg)` (default: the reference config).
  """
  model_cfg = simple_vqa.simple_vqa_config() if model_cfg is None else model_cfg
  return state_dicts.convert_tree(state_dict, families.abstract_variables(model_cfg),
                                  SIMPLE_VQA_LAYOUT).tree


def init_regressor(model_cfg: ml_collections.ConfigDict, in_dim: int, seed: int = 0) -> PyTree:
  """Fresh SimpleVQA regressor params (PyTorch nn.Linear's default init) for `in_dim` features."""
  regressor = simple_vqa.QualityRegressor(int(model_cfg.hidden))
  return regressor.init(jax.random.key(seed), jnp.zeros((1, in_dim), jnp.float32))["params"]


def simple_vqa_from_resnet50(state_dict: Mapping[str, Any],
                             model_cfg: ml_collections.ConfigDict | None = None,
                             seed: int = 0) -> state_dicts.Converted:
  """ImageNet torchvision ResNet-50 -> full SimpleVQA variables; the regressor `head` is fresh.

  `.tree` is {'params': {'backbone', 'head'}, 'batch_stats': {'backbone'}} for
  `build_simple_vqa(model_cfg)` (default: the reference config); `.filled` lists the head leaves.
  """
  model_cfg = simple_vqa.simple_vqa_config() if model_cfg is None else model_cfg
  abstract = families.abstract_variables(model_cfg)
  in_dim = abstract["params"]["head"]["hidden"]["kernel"].shape[0]
  head = flax.traverse_util.flatten_dict(init_regressor(model_cfg, in_dim, seed))

  def fill(path, leaf, value):
    del leaf  # The fresh head has the model's shapes by construction.
    return np.asarray(head[path[2:]]) if value is None and path[:2] == ("params", "head") else None

  return state_dicts.convert_tree(state_dict, abstract, IMAGENET_SIMPLE_VQA_LAYOUT, fill)
