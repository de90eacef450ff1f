"""PyTorch-layout state dicts <-> Flax params (no torch needed) and the orbax params round trip."""

import importlib.util
import re

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from vqa_jax import convert_weights
from vqa_jax.models.model import build_model
from vqa_jax.models.model import fast_vqa_b_config


def smoke_model_cfg():
  """The tiny model of configs/smoke.py (2 stages, fragment bias in stage 1)."""
  spec = importlib.util.spec_from_file_location("smoke_cfg", REPO_ROOT / "configs" / "smoke.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config().model


@pytest.fixture(scope="module")
def params(fast_compile):  # pylint: disable=unused-argument
  """Initialised Flax params of the tiny model, as numpy."""
  cfg = smoke_model_cfg()
  video = jnp.zeros((1, 4, 32, 32, 3), jnp.uint8)
  variables = build_model(cfg).init(jax.random.key(1), video, train=False)
  return jax.tree_util.tree_map(np.asarray, variables["params"])


def to_torch_layout(params, backbone="fragments_backbone", head="vqa_head"):
  """Inverse mapping written independently: Flax params -> PyTorch-style state_dict."""
  out = {}
  for path, value in flax.traverse_util.flatten_dict(params, sep="/").items():
    top, rest = path.split("/", 1)
    name = re.sub(r"(layers|blocks)_(\d+)", r"\1.\2", rest).replace("/", ".")
    name = re.sub(r"\.(kernel|scale)$", ".weight", name)
    if path.endswith("kernel") and value.ndim == 2:
      value = value.T
    elif path.endswith("kernel"):
      value = np.transpose(value, (4, 3, 0, 1, 2))
    out[(backbone if top == "backbone" else head) + "." + name] = np.array(value)
  return out


def assert_trees_equal(a, b):
  flat_a = flax.traverse_util.flatten_dict(a)
  flat_b = flax.traverse_util.flatten_dict(b)
  assert flat_a.keys() == flat_b.keys()
  for k in flat_a:
    np.testing.assert_array_equal(np.asarray(flat_a[k]), np.asarray(flat_b[k]), err_msg=str(k))


def test_official_layout_round_trip(params):
  state = to_torch_layout(params)
  assert "fragments_backbone.layers.0.blocks.0.attn.qkv.weight" in state
  assert state["fragments_backbone.patch_embed.proj.weight"].shape == (16, 3, 2, 4, 4)
  assert state["vqa_head.fc_hid.weight"].shape == (16, 32, 1, 1, 1)
  state["fragments_backbone.layers.0.blocks.0.attn.relative_position_index"] = np.zeros(3)
  state["fragments_backbone.layers.0.blocks.1.attn_mask"] = np.zeros(3)
  assert_trees_equal(convert_weights.convert_state_dict({"state_dict": state}, smoke_model_cfg()),
                     params)


def test_key_set_round_trip(params):
  state = to_torch_layout(params)
  converted = convert_weights.convert_state_dict(state, smoke_model_cfg())
  assert set(to_torch_layout(converted)) == set(state)
  assert len(flax.traverse_util.flatten_dict(converted)) == len(state)


def test_kinetics_layout(params):
  state = to_torch_layout(params, backbone="backbone", head="cls_head")
  state = {k: v for k, v in state.items() if "fragment_position_bias_table" not in k}
  state["cls_head.fc_cls.weight"] = np.zeros((400, 32), np.float32)
  converted = convert_weights.convert_state_dict(state, smoke_model_cfg())
  table = converted["backbone"]["layers_0"]["blocks_0"]["attn"]["fragment_position_bias_table"]
  np.testing.assert_array_equal(table, np.zeros_like(table))
  expected = flax.traverse_util.flatten_dict(params["backbone"])
  got = flax.traverse_util.flatten_dict(converted["backbone"])
  for k, v in expected.items():
    if k[-1] != "fragment_position_bias_table":
      np.testing.assert_array_equal(got[k], v, err_msg=str(k))
  head_shapes = jax.tree_util.tree_map(np.shape, params["head"])
  assert jax.tree_util.tree_map(np.shape, converted["head"]) == head_shapes


def test_unknown_and_missing_keys_are_listed(params):
  state = to_torch_layout(params)
  state["fragments_backbone.extra.weight"] = np.zeros(2)
  del state["vqa_head.fc_last.bias"]
  with pytest.raises(ValueError) as err:
    convert_weights.convert_state_dict(state, smoke_model_cfg())
  assert "fragments_backbone.extra.weight" in str(err.value)
  assert "vqa_head.fc_last.bias" in str(err.value)


def test_shape_mismatch_is_an_error(params):
  state = to_torch_layout(params)
  state["fragments_backbone.norm.weight"] = np.zeros(5, np.float32)
  with pytest.raises(ValueError, match="fragments_backbone.norm.weight"):
    convert_weights.convert_state_dict(state, smoke_model_cfg())


def test_unrecognised_layout():
  with pytest.raises(ValueError, match="fragments_backbone"):
    convert_weights.convert_state_dict({"encoder.w": np.zeros(1)}, smoke_model_cfg())


def test_orbax_round_trip(params, tmp_path):
  convert_weights.save_params(str(tmp_path / "ckpt"), params)
  assert_trees_equal(convert_weights.load_params(str(tmp_path / "ckpt")), params)


def test_no_torch_import_at_module_level():
  source = (REPO_ROOT / "vqa_jax" / "convert_weights.py").read_text()
  assert not re.search(r"^(import torch|from torch)", source, re.MULTILINE)


def test_kernel_of_wrong_rank_is_a_listed_mismatch(params):
  state = to_torch_layout(params)
  state["vqa_head.fc_hid.weight"] = state["vqa_head.fc_hid.weight"][..., 0]
  with pytest.raises(ValueError, match="vqa_head.fc_hid.weight"):
    convert_weights.convert_state_dict(state, smoke_model_cfg())


def test_fast_vqa_b_key_names_and_shapes():
  cfg = fast_vqa_b_config()
  zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, np.float32),
                                 convert_weights.abstract_params(cfg))
  state = to_torch_layout(zeros)
  assert len(state) == 185
  assert state["fragments_backbone.layers.2.blocks.5.attn.fragment_position_bias_table"].shape == (
      2535, 12)
  assert state["fragments_backbone.layers.2.downsample.reduction.weight"].shape == (768, 1536)
  assert state["fragments_backbone.patch_embed.proj.weight"].shape == (96, 3, 2, 4, 4)
  assert state["vqa_head.fc_hid.weight"].shape == (64, 768, 1, 1, 1)
  assert "fragments_backbone.layers.3.blocks.0.attn.fragment_position_bias_table" not in state
  converted = convert_weights.convert_state_dict(state, cfg)
  assert sum(v.size for v in jax.tree_util.tree_leaves(converted)) == 28_127_901
