"""ResNet-50 trunk (torchvision layout) and its torchvision state_dict import (paper §6.3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import torch_layouts
from vqa_jax.convert import convert_resnet
from vqa_jax.convert import state_dicts
from vqa_jax.models import resnet

TINY = dict(stage_sizes=(1, 2, 1, 1), width=8)
RESNET_LAYOUT = state_dicts.Layout(convert_resnet.resnet_key, convert_resnet.BN_BUFFERS,
                                   convert_resnet.RESNET_DROPPED_PREFIXES)


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _abstract(model, size=224):
  images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)


def convert_resnet50_state_dict(state_dict, model=None):
  """torchvision ResNet(-50) state_dict -> (params, batch_stats) of `model`; `fc.*` dropped."""
  model = resnet.resnet50() if model is None else model
  tree = state_dicts.convert_tree(state_dict, _abstract(model, 64), RESNET_LAYOUT).tree
  return tree["params"], tree["batch_stats"]


def test_resnet50_parameter_count_matches_torchvision():
  """torchvision resnet50 has 25,557,032 parameters; without fc (2048*1000 + 1000) 23,508,032."""
  variables = _abstract(resnet.resnet50())
  assert _count(variables["params"]) == 25_557_032 - 2_049_000 == 23_508_032
  # Running mean + var of every BatchNorm: 2 x 26,560 channels (from the torchvision key list).
  bn_channels = sum(s[0] for k, s in torch_layouts.torchvision_resnet_shapes().items()
                    if k.endswith("running_mean"))
  assert _count(variables["batch_stats"]) == 2 * bn_channels == 53_120


def test_resnet50_stage_shapes():
  """Strides 4, 8, 16, 32 and 256/512/1024/2048 channels at 224x224."""
  model = resnet.resnet50()
  variables = _abstract(model)
  images = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  stages = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, images)
  assert [s.shape for s in stages] == [(2, 56, 56, 256), (2, 28, 28, 512), (2, 14, 14, 1024),
                                       (2, 7, 7, 2048)]


def test_stride_sits_on_the_3x3_conv():
  """ResNet v1.5: only conv2 (3x3) and the shortcut of a stage's first block downsample."""
  model = resnet.ResNet(**TINY)
  images = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  _, inter = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=False, capture_intermediates=True),
      _abstract(model, 32), images)
  block = inter["intermediates"]["layer2_0"]
  assert block["conv1"]["__call__"][0].shape == (1, 8, 8, 16)  # 1x1: no stride.
  assert block["conv2"]["__call__"][0].shape == (1, 4, 4, 16)  # 3x3: stride 2.
  assert block["downsample_conv"]["__call__"][0].shape == (1, 4, 4, 64)


def test_convert_round_trip_tiny():
  """Every torchvision tensor lands, transposed, on its Flax leaf; fc and counters are dropped."""
  shapes = torch_layouts.torchvision_resnet_shapes(**TINY, num_classes=10)
  state = torch_layouts.fake_state_dict(shapes)
  params, stats = convert_resnet50_state_dict(state, resnet.ResNet(**TINY))
  np.testing.assert_array_equal(params["conv1"]["kernel"],
                                state["conv1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["layer2_1"]["conv2"]["kernel"],
                                state["layer2.1.conv2.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["layer3_0"]["downsample_conv"]["kernel"][0, 0],
                                state["layer3.0.downsample.0.weight"][:, :, 0, 0].T)
  np.testing.assert_array_equal(params["layer4_0"]["downsample_bn"]["scale"],
                                state["layer4.0.downsample.1.weight"])
  np.testing.assert_array_equal(params["layer1_0"]["bn3"]["bias"], state["layer1.0.bn3.bias"])
  np.testing.assert_array_equal(stats["bn1"]["mean"], state["bn1.running_mean"])
  np.testing.assert_array_equal(stats["layer4_0"]["bn2"]["var"], state["layer4.0.bn2.running_var"])
  kept = [k for k in shapes if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
  assert len(jax.tree.leaves((params, stats))) == len(kept)
  assert _count((params, stats)) == sum(int(np.prod(shapes[k])) for k in kept)


def test_convert_full_resnet50_key_list():
  """The full torchvision resnet50 key list (fc included) converts to the full-size trunk."""
  state = {k: np.zeros(s, np.float32) for k, s in torch_layouts.torchvision_resnet_shapes().items()}
  params, _ = convert_resnet50_state_dict(state)
  assert _count(params) == 23_508_032


def test_convert_errors_list_every_bad_key():
  """Missing, unknown and mis-shaped tensors are all named in one error (PyTorch key names)."""
  state = torch_layouts.fake_state_dict(torch_layouts.torchvision_resnet_shapes(**TINY))
  del state["layer2.1.bn1.running_var"]
  state["layer9.0.conv1.weight"] = np.zeros((8, 8, 1, 1), np.float32)
  state["layer1.0.conv2.weight"] = np.zeros((8, 8, 1, 1), np.float32)
  with pytest.raises(ValueError) as err:
    convert_resnet50_state_dict(state, resnet.ResNet(**TINY))
  message = str(err.value)
  assert "1 missing keys ['layer2.1.bn1.running_var']" in message
  assert "1 unknown keys ['layer9.0.conv1.weight']" in message
  assert "layer1.0.conv2.weight: checkpoint (8, 8, 1, 1), model expects (8, 8, 3, 3)" in message


def test_unwrap_checkpoint_strips_dataparallel_prefix():
  """`state_dict`/`model_state` wrappers and DataParallel's `module.` prefix are removed."""
  inner = {"module.conv1.weight": 1, "module.bn1.bias": 2}
  assert state_dicts.unwrap_state_dict({"state_dict": inner}) == {"conv1.weight": 1,
                                                                 "bn1.bias": 2}
  assert state_dicts.unwrap_state_dict({"model_state": {"a": 1}, "epoch": 3}) == {"a": 1}
