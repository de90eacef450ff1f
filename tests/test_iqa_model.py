"""The IQA backbone: Video Swin with temporal patch 1 and window (1, w, w) is a 2D Swin."""

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vqa_jax.convert import convert_swin2d
from vqa_jax.convert import convert_weights
from vqa_jax.families import losses
from vqa_jax.models import fast_vqa as model_lib
from vqa_jax.models import video_swin

pytestmark = pytest.mark.usefixtures("fast_compile")


def tiny_iqa_model_config(frag_biases=(False, False)) -> ml_collections.ConfigDict:
  """A 2-stage, 1-frame Swin with window (1, 7, 7): embed 8, depths (2, 1), heads (1, 2)."""
  cfg = model_lib.fast_vqa_b_config()
  cfg.patch_size = (1, 4, 4)
  cfg.embed_dim = 8
  cfg.depths = (2, 1)
  cfg.num_heads = (1, 2)
  cfg.window_size = (1, 7, 7)
  cfg.frag_biases = frag_biases
  cfg.fragments_grid = 7
  cfg.drop_path_rate = 0.0
  cfg.head_hidden = 4
  cfg.head_dropout = 0.0
  return cfg


def test_relative_table_and_index_are_the_2d_ones():
  index = video_swin.relative_position_index((1, 7, 7))
  # Independent 2D Swin index: (dh + 6) * 13 + (dw + 6) for tokens i, j in row-major order.
  hs, ws = np.divmod(np.arange(49), 7)
  expected = (hs[:, None] - hs[None, :] + 6) * 13 + (ws[:, None] - ws[None, :] + 6)
  np.testing.assert_array_equal(index, expected)
  params = jax.eval_shape(
      lambda: model_lib.build_model(tiny_iqa_model_config()).init(
          jax.random.key(0), jnp.zeros((1, 1, 56, 56, 3), jnp.uint8), train=False))["params"]
  tables = [v.shape for p, v in flax.traverse_util.flatten_dict(params).items()
            if p[-1] == "relative_position_bias_table"]
  assert tables == [(169, 1), (169, 1), (169, 2)]  # (2*1-1)(2*7-1)^2 rows, one column per head.


def test_window_and_shift_with_one_frame():
  assert video_swin.get_window_size((1, 14, 14), (1, 7, 7), (0, 3, 3)) == ((1, 7, 7), (0, 3, 3))
  assert video_swin.get_window_size((1, 7, 7), (1, 7, 7), (0, 3, 3)) == ((1, 7, 7), (0, 0, 0))


def test_fragment_gate_with_one_frame_is_the_2d_l1_distance():
  coords = video_swin.fragment_windows((1, 8, 8), (1, 4, 4), (0, 2, 2), fragments_grid=2)
  gate = np.asarray(video_swin.fragment_gate(coords))
  # Hand computation: after rolling by -2, token (h, w) of window (a, b) sits at
  # ((4a + h + 2) % 8, (4b + w + 2) % 8), whose fragment is floor(row * 2 / 8) per axis.
  hs, ws = np.divmod(np.arange(16), 4)
  for window, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    frag_h = ((4 * a + hs + 2) % 8) // 4
    frag_w = ((4 * b + ws + 2) % 8) // 4
    expected = (np.abs(frag_h[:, None] - frag_h[None, :])
                + np.abs(frag_w[:, None] - frag_w[None, :]))
    np.testing.assert_array_equal(gate[window], expected)


def test_window_attention_equals_numpy_2d_window_attention():
  attn = video_swin.WindowAttention3D(dim=8, window_size=(1, 7, 7), num_heads=2)
  x = jax.random.normal(jax.random.key(1), (3, 49, 8))
  params = attn.init(jax.random.key(2), x)["params"]
  got = np.asarray(attn.apply({"params": params}, x))

  p = jax.tree.map(np.asarray, params)
  xn = np.asarray(x, np.float64)
  qkv = (xn @ p["qkv"]["kernel"] + p["qkv"]["bias"]).reshape(3, 49, 3, 2, 4)
  q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (B, heads, N, 4)
  hs, ws = np.divmod(np.arange(49), 7)
  rows = (hs[:, None] - hs[None, :] + 6) * 13 + (ws[:, None] - ws[None, :] + 6)
  bias = p["relative_position_bias_table"][rows].transpose(2, 0, 1)  # (heads, N, N)
  logits = q @ k.transpose(0, 1, 3, 2) * 4 ** -0.5 + bias
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  out = (weights @ v).transpose(0, 2, 1, 3).reshape(3, 49, 8)
  expected = out @ p["proj"]["kernel"] + p["proj"]["bias"]
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frag_biases", [(False, False), (True, False)])
def test_one_frame_model_does_not_mix_frames(frag_biases):
  """A 2-frame input gives, per frame, exactly the 1-frame model's output on that frame."""
  model = model_lib.build_model(tiny_iqa_model_config(frag_biases))
  video = jax.random.randint(jax.random.key(3), (2, 2, 56, 56, 3), 0, 256).astype(jnp.uint8)
  params = jax.jit(lambda v: model.init(jax.random.key(4), v, train=False))(video[:, :1])["params"]
  if frag_biases[0]:  # Non-zero fragment tables, so that the gate matters.
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: v + 0.1 if "fragment" in jax.tree_util.keystr(path) else v, params)
  apply = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False))
  both = apply(params, video)
  assert both.shape == (2, 2, 7, 7)
  for t in range(2):
    single = apply(params, video[:, t:t + 1])
    np.testing.assert_allclose(both[:, t], single[:, 0], rtol=1e-5, atol=1e-5)


def test_forward_and_loss_are_finite():
  model = model_lib.build_model(tiny_iqa_model_config())
  video = jax.random.randint(jax.random.key(5), (4, 1, 56, 56, 3), 0, 256).astype(jnp.uint8)
  params = jax.jit(lambda v: model.init(jax.random.key(6), v, train=False))(video)["params"]
  batch = {"video": video, "label": jnp.array([1.0, 2.0, 3.5, 4.0])}
  loss_fn = losses.make_loss_fn(model, 0.3)
  (loss, pred), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      params, batch, jax.random.key(7))
  assert pred.shape == (4,) and np.isfinite(float(loss)) and np.all(np.isfinite(pred))
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


# ---------------------------------------------------------------------------------------------
# convert_swin2d: the Microsoft 2D Swin layout, written out here independently of the code.


def fake_swin2d_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """Random tensors under the keys and shapes of a 2D Swin: embed 8, depths (2, 1), heads (1, 2)."""
  rng = np.random.default_rng(seed)
  shapes = {
      "patch_embed.proj.weight": (8, 3, 4, 4), "patch_embed.proj.bias": (8,),
      "patch_embed.norm.weight": (8,), "patch_embed.norm.bias": (8,),
      "layers.0.downsample.norm.weight": (32,), "layers.0.downsample.norm.bias": (32,),
      "layers.0.downsample.reduction.weight": (16, 32),
      "norm.weight": (16,), "norm.bias": (16,),
      "head.weight": (1000, 16), "head.bias": (1000,),
  }
  for stage, block, dim, heads in ((0, 0, 8, 1), (0, 1, 8, 1), (1, 0, 16, 2)):
    prefix = f"layers.{stage}.blocks.{block}."
    shapes.update({
        prefix + "norm1.weight": (dim,), prefix + "norm1.bias": (dim,),
        prefix + "attn.relative_position_bias_table": (169, heads),
        prefix + "attn.relative_position_index": (49, 49),
        prefix + "attn.qkv.weight": (3 * dim, dim), prefix + "attn.qkv.bias": (3 * dim,),
        prefix + "attn.proj.weight": (dim, dim), prefix + "attn.proj.bias": (dim,),
        prefix + "norm2.weight": (dim,), prefix + "norm2.bias": (dim,),
        prefix + "mlp.fc1.weight": (4 * dim, dim), prefix + "mlp.fc1.bias": (4 * dim,),
        prefix + "mlp.fc2.weight": (dim, 4 * dim), prefix + "mlp.fc2.bias": (dim,),
    })
  state = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
  state["layers.0.blocks.1.attn_mask"] = np.zeros((4, 49, 49), np.float32)  # a buffer
  return state


def test_convert_swin2d_round_trip_and_layout():
  state = fake_swin2d_state_dict()
  params = convert_swin2d.convert_state_dict({"model": state}, tiny_iqa_model_config())
  backbone = params["backbone"]
  np.testing.assert_array_equal(backbone["patch_embed"]["proj"]["kernel"][0, 1, 2, :, 5],
                                state["patch_embed.proj.weight"][5, :, 1, 2])
  np.testing.assert_array_equal(backbone["layers_1"]["blocks_0"]["attn"]["qkv"]["kernel"],
                                state["layers.1.blocks.0.attn.qkv.weight"].T)
  np.testing.assert_array_equal(
      backbone["layers_0"]["blocks_1"]["attn"]["relative_position_bias_table"],
      state["layers.0.blocks.1.attn.relative_position_bias_table"])
  np.testing.assert_array_equal(backbone["layers_0"]["downsample"]["reduction"]["kernel"],
                                state["layers.0.downsample.reduction.weight"].T)
  assert set(params["head"]) == {"fc_hid", "fc_last"}
  back = convert_swin2d.to_state_dict(params)
  kept = {k: v for k, v in state.items()
          if not k.startswith("head.") and not k.endswith(("relative_position_index", "attn_mask"))}
  assert sorted(back) == sorted(kept)
  for key, value in kept.items():
    np.testing.assert_array_equal(back[key], value, err_msg=key)
  model = model_lib.build_model(tiny_iqa_model_config())
  video = jnp.full((1, 1, 56, 56, 3), 128, jnp.uint8)
  quality_map = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False))(params, video)
  assert np.all(np.isfinite(quality_map))


def test_convert_swin2d_zero_fragment_tables_when_grpb_is_on():
  params = convert_swin2d.convert_state_dict(fake_swin2d_state_dict(),
                                             tiny_iqa_model_config((True, False)))
  table = params["backbone"]["layers_0"]["blocks_0"]["attn"]["fragment_position_bias_table"]
  assert table.shape == (169, 1) and not np.any(table)


def test_convert_swin2d_lists_every_mismatch():
  state = fake_swin2d_state_dict()
  del state["norm.bias"]
  state["layers.9.extra.weight"] = np.zeros(3, np.float32)
  state["layers.1.blocks.0.attn.relative_position_bias_table"] = np.zeros((2535, 2), np.float32)
  with pytest.raises(ValueError, match=r"1 missing keys \['norm.bias'\]; 1 unknown keys "
                     r"\['layers.9.extra.weight'\]; 1 shape mismatches .*\(2535, 2\)"):
    convert_swin2d.convert_state_dict(state, tiny_iqa_model_config())


def test_convert_swin2d_needs_a_one_frame_model():
  cfg = tiny_iqa_model_config()
  cfg.patch_size = (2, 4, 4)
  with pytest.raises(ValueError, match="temporal patch 1 and window 1"):
    convert_swin2d.convert_state_dict(fake_swin2d_state_dict(), cfg)


def test_convert_weights_command_detects_swin2d_and_reports_the_fresh_leaves():
  """`convert_weights` tells a 2D Swin from its keys; the head and fragment tables are reported."""
  state = fake_swin2d_state_dict()
  options = convert_weights.Options(
      config=ml_collections.ConfigDict({"model": tiny_iqa_model_config((True, False))}), seed=2)
  result = convert_weights.convert({"model": state}, "auto", options)
  assert (result.format, result.model, list(result.variables)) == ("swin2d", "config", ["params"])
  backbone = result.variables["params"]["backbone"]
  np.testing.assert_array_equal(backbone["norm"]["bias"], state["norm.bias"])
  fresh_tables = {f"params/backbone/layers_0/blocks_{b}/attn/fragment_position_bias_table"
                  for b in (0, 1)}
  fresh_head = {f"params/head/{layer}/{leaf}" for layer in ("fc_hid", "fc_last")
                for leaf in ("kernel", "bias")}
  assert result.filled == {path: "absent" for path in fresh_tables | fresh_head}
  head = convert_swin2d.convert_state_dict(state, tiny_iqa_model_config((True, False)), seed=2)
  np.testing.assert_array_equal(result.variables["params"]["head"]["fc_hid"]["kernel"],
                                head["head"]["fc_hid"]["kernel"])
