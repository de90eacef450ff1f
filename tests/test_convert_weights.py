"""PyTorch-layout state dicts <-> Flax params (no torch needed) and the orbax params round trip."""

import os
import re
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tests.helpers import REPO_ROOT
from tests.helpers import assert_trees_equal
from tests.helpers import load_config
from vqa_jax import families
from vqa_jax.convert import convert_weights
from vqa_jax.convert import pretrained
from vqa_jax.convert import state_dicts
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.models.fast_vqa import fast_vqa_b_config


def smoke_model_cfg():
  """The tiny model of configs/smoke.py (2 stages, fragment bias in stage 1)."""
  return load_config("smoke").model


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
  assert got.keys() == expected.keys()
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
  state_dicts.save_variables(str(tmp_path / "ckpt"), {"params": params})
  assert_trees_equal(pretrained.load_params(str(tmp_path / "ckpt")), params)


CONVERTER_MODULES = ["convert_weights.py"] + [
    f"convert/{name}.py" for name in ("convert_weights", "convert_resnet", "convert_swin2d",
                                      "state_dicts", "swin_layout", "pretrained")]


@pytest.mark.parametrize("module", CONVERTER_MODULES)
def test_no_torch_import_at_module_level(module):
  source = (REPO_ROOT / "vqa_jax" / module).read_text()
  assert not re.search(r"^(import torch|from torch)", source, re.MULTILINE)


def test_kernel_of_wrong_rank_is_a_listed_mismatch(params):
  state = to_torch_layout(params)
  state["vqa_head.fc_hid.weight"] = state["vqa_head.fc_hid.weight"][..., 0]
  with pytest.raises(ValueError, match="vqa_head.fc_hid.weight"):
    convert_weights.convert_state_dict(state, smoke_model_cfg())


def test_fast_vqa_b_key_names_and_shapes():
  cfg = fast_vqa_b_config()
  zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, np.float32),
                                 families.abstract_variables(cfg)["params"])
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


def kinetics_layout(state):
  """An official-layout state_dict rewritten as the Kinetics Video Swin-T checkpoint's keys."""
  out = {k.replace("fragments_backbone.", "backbone.", 1): v for k, v in state.items()
         if k.startswith("fragments_backbone.") and "fragment_position_bias_table" not in k}
  channels = state["fragments_backbone.norm.weight"].shape[0]
  out["cls_head.fc_cls.weight"] = np.zeros((400, channels), np.float32)
  out["cls_head.fc_cls.bias"] = np.zeros(400, np.float32)
  return out


def test_kinetics_checkpoint_of_fast_vqa_b_initialises_as_the_reference():
  """Kinetics Swin-T -> FAST-VQA-B: zero fragment tables, head U(+-1/sqrt(fan_in)) (paper §6.1)."""
  cfg = fast_vqa_b_config()
  abstract = families.abstract_variables(cfg)["params"]
  ones = jax.tree_util.tree_map(lambda s: np.ones(s.shape, np.float32), abstract)
  state = kinetics_layout(to_torch_layout(ones))
  assert state["backbone.layers.0.blocks.0.attn.relative_position_bias_table"].shape == (2535, 3)
  converted = convert_weights.convert_state_dict({"state_dict": state}, cfg, seed=3)
  flat = flax.traverse_util.flatten_dict(converted["backbone"])
  tables = [v for k, v in flat.items() if k[-1] == "fragment_position_bias_table"]
  assert sum(t.size for t in tables) == 228_150 and not any(t.any() for t in tables)
  assert all((v == 1).all() for k, v in flat.items() if k[-1] != "fragment_position_bias_table")
  for name, fan_in in (("fc_hid", 768), ("fc_last", 64)):
    bound = 1 / np.sqrt(fan_in)
    values = np.concatenate([np.ravel(converted["head"][name][leaf])
                             for leaf in ("kernel", "bias")])
    assert stats.kstest(values, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3, name
  again = convert_weights.convert_state_dict(state, cfg, seed=3)["head"]
  other = convert_weights.convert_state_dict(state, cfg, seed=4)["head"]
  np.testing.assert_array_equal(again["fc_hid"]["kernel"], converted["head"]["fc_hid"]["kernel"])
  assert not np.array_equal(other["fc_hid"]["kernel"], converted["head"]["fc_hid"]["kernel"])


def test_kinetics_relative_tables_of_another_window_are_reinitialised(params):
  """As the reference's loader drops mismatched keys, those tables keep trunc_normal(0.02)."""
  cfg = smoke_model_cfg()
  cfg.window_size = (2, 2, 2)  # Tables of 3*3*3 rows instead of the checkpoint's 3*7*7.
  state = kinetics_layout(to_torch_layout(params))
  converted = convert_weights.convert_state_dict(state, cfg)
  tables = [np.asarray(converted["backbone"][f"layers_{i}"]["blocks_0"]["attn"][
      "relative_position_bias_table"]) for i in (0, 1)]
  assert [t.shape for t in tables] == [(27, 1), (27, 2)]
  # timm's trunc_normal_(std=0.02) cuts at +-2 absolute: in effect N(0, 0.02).
  values = np.concatenate([t.ravel() for t in tables])
  assert stats.kstest(values, stats.norm(0, 0.02).cdf).pvalue > 1e-3
  np.testing.assert_array_equal(converted["backbone"]["norm"]["scale"],
                                params["backbone"]["norm"]["scale"])
  official = to_torch_layout(params)
  with pytest.raises(ValueError, match=r"relative_position_bias_table: checkpoint \(147, 1\), "
                     r"model expects \(27, 1\)"):
    convert_weights.convert_state_dict(official, cfg)


def test_shape_mismatch_names_both_pytorch_shapes(params):
  state = to_torch_layout(params)
  key = "fragments_backbone.layers.0.blocks.0.attn.qkv.weight"
  assert state[key].shape == (48, 16)
  state[key] = state[key].T
  del state["vqa_head.fc_last.bias"]
  with pytest.raises(ValueError) as err:
    convert_weights.convert_state_dict(state, smoke_model_cfg())
  message = str(err.value)
  assert f"{key}: checkpoint (16, 48), model expects (48, 16)" in message
  assert "1 missing keys ['vqa_head.fc_last.bias']" in message


@pytest.mark.parametrize("leaf, torch_shape, flax_shape", [
    ("kernel", (3, 5), (5, 3)),  # Linear (out, in) -> Dense (in, out).
    ("kernel", (4, 3, 2, 5, 6), (2, 5, 6, 3, 4)),  # Conv3d -> Conv (t, h, w, in, out).
    ("kernel", (4, 3, 5, 6), (5, 6, 3, 4)),  # Conv2d (ResNet) -> Conv (h, w, in, out).
    ("bias", (7,), (7,)),
    ("relative_position_bias_table", (15, 2), (15, 2)),
])
def test_to_torch_inverts_to_flax(leaf, torch_shape, flax_shape):
  value = np.random.default_rng(0).normal(size=torch_shape).astype(np.float32)
  flax_value = state_dicts.to_flax(leaf, value)
  assert flax_value.shape == flax_shape
  assert state_dicts.torch_shape(leaf, flax_shape) == torch_shape
  np.testing.assert_array_equal(state_dicts.to_torch(leaf, flax_value), value)
  if leaf == "kernel":  # Element (o, i, *k) of the PyTorch weight is element (*k, i, o).
    index = (1, 2) + tuple(range(len(torch_shape) - 2))
    assert flax_value[index[2:] + (2, 1)] == value[index]


def test_to_state_dict_matches_the_independent_inverse(params):
  ours = convert_weights.to_state_dict(params)
  reference = to_torch_layout(params)
  assert ours.keys() == reference.keys()
  for key, value in reference.items():
    np.testing.assert_array_equal(ours[key], value, err_msg=key)


@pytest.mark.parametrize("entries, expected", [
    ({"fragments_backbone.layers.0.blocks.0.attn.relative_position_bias_table": (2535, 3),
      "fragments_backbone.layers.0.blocks.0.attn.fragment_position_bias_table": (2535, 3)},
     "fast_vqa_b"),
    ({"fragments_backbone.layers.0.blocks.0.attn.relative_position_bias_table": (343, 3)},
     "fast_vqa_m"),
    ({"backbone.layers.0.blocks.0.attn.relative_position_bias_table": (2535, 3)}, "fast_vqa_b"),
])
def test_infer_model_name(entries, expected):
  state = {k: np.zeros(s, np.float32) for k, s in entries.items()}
  assert convert_weights.infer_model_name({"state_dict": state}) == expected


def test_infer_model_name_refuses_unknown_tables():
  state = {"fragments_backbone.layers.0.blocks.0.attn.relative_position_bias_table":
           np.zeros((147, 1), np.float32)}
  with pytest.raises(ValueError, match=r"\(147, 1\).*--model or --config"):
    convert_weights.infer_model_name(state)


def test_model_configs():
  m = convert_weights.model_config("fast_vqa_m")
  assert tuple(m.window_size) == (4, 4, 4) and not any(m.frag_biases)
  assert (convert_weights.model_config("faster_vqa").to_dict()
          == convert_weights.model_config("fast_vqa_b").to_dict())
  with pytest.raises(ValueError, match="fast_vqa_b"):
    convert_weights.model_config("fast_vqa_x")


def test_reading_pth_without_torch_names_the_file(tmp_path, monkeypatch):
  with pytest.raises(FileNotFoundError, match="absent.pth"):
    state_dicts.load_torch_state_dict(str(tmp_path / "absent.pth"))
  (tmp_path / "model.pth").write_bytes(b"not a checkpoint")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(ValueError, match="model.pth"):
    state_dicts.read_state_dict(str(tmp_path / "model.pth"))
  with pytest.raises(ImportError, match="model.pth with --trust_pickle needs PyTorch"):
    state_dicts.read_state_dict(str(tmp_path / "model.pth"), trust_pickle=True)


def _run_cli(*args):
  """`python -m vqa_jax.convert_weights ARGS` with this interpreter's import path."""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *sys.path]))
  return subprocess.run([sys.executable, "-m", "vqa_jax.convert_weights", *args], cwd=REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.integration
def test_cli_converts_a_real_pth_file(params, tmp_path):
  """End to end with a .pth written by torch: CLI -> orbax -> load_params (needs torch)."""
  torch = pytest.importorskip("torch")
  state = {k: torch.from_numpy(v) for k, v in to_torch_layout(params).items()}
  torch.save({"state_dict": state, "meta": {"epoch": 3}}, tmp_path / "fast.pth")
  result = _run_cli(f"--src={tmp_path / 'fast.pth'}", f"--dst={tmp_path / 'out'}",
                    "--config=configs/smoke.py")
  assert result.returncode == 0, result.stderr[-3000:]
  assert_trees_equal(pretrained.load_params(str(tmp_path / "out")), params)

  state["fragments_backbone.extra.weight"] = torch.zeros(2)
  torch.save(state, tmp_path / "bad.pth")
  result = _run_cli(f"--src={tmp_path / 'bad.pth'}", f"--dst={tmp_path / 'bad'}",
                    "--config=configs/smoke.py")
  assert result.returncode != 0
  assert "bad.pth" in result.stderr and "fragments_backbone.extra.weight" in result.stderr
