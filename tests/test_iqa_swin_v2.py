"""Swin-V2 (SAMA's IQA backbone): cosine attention with the MLP position bias against numpy."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import load_config
from vqa_jax.models import swin_v2

pytestmark = pytest.mark.usefixtures("fast_compile")


def test_relative_coords_table_by_hand():
  table = swin_v2.relative_coords_table((8, 8))
  assert table.shape == (15 * 15, 2)
  far = np.log2(1 + 8.0) / 3  # offset 7 of a window of 8: 7 / 7 * 8 = 8 -> log2(9) / log2(8)
  near = np.log2(1 + 8.0 / 7) / 3  # offset 1: 1 / 7 * 8
  np.testing.assert_allclose(table[0], [-far, -far], rtol=1e-6)  # (dh, dw) = (-7, -7)
  np.testing.assert_allclose(table[7 * 15 + 7], [0, 0])
  np.testing.assert_allclose(table[7 * 15 + 8], [0, near], rtol=1e-6)
  np.testing.assert_allclose(table[14 * 15 + 6], [far, -near], rtol=1e-6)


def numpy_window_attention(p, x, window, heads):
  """Upstream WindowAttention (V2) forward in float64 numpy, written from its definition."""
  b, n, c = x.shape
  qkv = x @ p["qkv"]["kernel"] + np.concatenate([p["q_bias"], np.zeros(c), p["v_bias"]])
  q, k, v = (qkv.reshape(b, n, 3, heads, c // heads)[:, :, i].transpose(0, 2, 1, 3)
             for i in range(3))
  q = q / np.linalg.norm(q, axis=-1, keepdims=True)
  k = k / np.linalg.norm(k, axis=-1, keepdims=True)
  attn = q @ k.transpose(0, 1, 3, 2) * np.exp(np.minimum(p["logit_scale"], np.log(100.0)))
  wh, ww = window
  dh, dw = np.meshgrid(np.arange(-(wh - 1), wh), np.arange(-(ww - 1), ww), indexing="ij")
  coords = np.stack([dh / (wh - 1) * 8, dw / (ww - 1) * 8], -1).reshape(-1, 2)
  coords = np.sign(coords) * np.log2(np.abs(coords) + 1) / 3
  hidden = np.maximum(coords @ p["cpb_mlp_0"]["kernel"] + p["cpb_mlp_0"]["bias"], 0)
  table = hidden @ p["cpb_mlp_2"]["kernel"]
  hs, ws = np.divmod(np.arange(n), ww)
  rows = (hs[:, None] - hs[None, :] + wh - 1) * (2 * ww - 1) + (ws[:, None] - ws[None, :] + ww - 1)
  attn = attn + 16 / (1 + np.exp(-table[rows].transpose(2, 0, 1)))
  attn = np.exp(attn - attn.max(-1, keepdims=True))
  attn /= attn.sum(-1, keepdims=True)
  out = (attn @ v).transpose(0, 2, 1, 3).reshape(b, n, c)
  return out @ p["proj"]["kernel"] + p["proj"]["bias"]


def test_window_attention_matches_numpy():
  attn = swin_v2.WindowAttentionV2(dim=8, num_heads=2)
  x = jax.random.normal(jax.random.key(0), (3, 16, 8))
  params = attn.init(jax.random.key(1), x, (4, 4))["params"]
  rng = np.random.default_rng(2)
  params = jax.tree.map(lambda v: np.asarray(v) + 0.3 * rng.standard_normal(v.shape), params)
  params["logit_scale"] = np.array([[[1.0]], [[6.0]]])  # head 2 is clamped at log(100)
  got = attn.apply({"params": params}, x, (4, 4))
  expected = numpy_window_attention(params, np.asarray(x, np.float64), (4, 4), 2)
  np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


def swin_v2_t_parameters() -> int:
  """Swin-V2-T (embed 96, depths 2-2-6-2, heads 3-6-12-24) without classifier, by hand."""
  total = 3 * 16 * 96 + 96 + 2 * 96  # patch embed conv + its LayerNorm
  for stage, (depth, heads) in enumerate(zip((2, 2, 6, 2), (3, 6, 12, 24))):
    c = 96 * 2 ** stage
    attn = heads + 2 * c + 3 * c * c + c * c + c + (2 * 512 + 512) + 512 * heads
    mlp = 4 * c * c + 4 * c + 4 * c * c + c
    total += depth * (attn + mlp + 4 * c)  # + norm1, norm2
    if stage < 3:
      total += 4 * c * 2 * c + 2 * 2 * c  # reduction (no bias) + LayerNorm(2C)
  return total + 2 * 768


def test_swin_v2_tiny_parameter_count_and_zero_post_norms():
  model = swin_v2.SwinTransformerV2()
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 1, 256, 256, 3)),
                                             train=False))["params"]
  flat = flax.traverse_util.flatten_dict(params)
  assert sum(int(np.prod(v.shape)) for v in flat.values()) == swin_v2_t_parameters()
  assert flat["layers_3", "blocks_1", "attn", "cpb_mlp_2", "kernel"].shape == (512, 24)
  assert flat["layers_0", "downsample", "norm", "scale"].shape == (192,)
  tiny = swin_v2.SwinTransformerV2(embed_dim=8, depths=(1,), num_heads=(2,), window=4)
  init = tiny.init(jax.random.key(0), jnp.zeros((1, 1, 16, 16, 3)), train=False)["params"]
  assert not np.any(init["layers_0"]["blocks_0"]["norm1"]["scale"])  # _init_respostnorm


def test_frames_are_independent_and_output_finite():
  model = swin_v2.SwinTransformerV2(embed_dim=8, depths=(2, 1), num_heads=(1, 2), window=4,
                                    drop_path_rate=0.0)
  video = jax.random.normal(jax.random.key(3), (2, 2, 48, 48, 3))
  params = jax.jit(lambda v: model.init(jax.random.key(4), v, train=False))(video[:, :1])["params"]
  params = jax.tree.map(lambda v: v + 0.05, params)  # non-zero post-norms
  apply = jax.jit(lambda p, v: model.apply({"params": p}, v, train=False))
  both = apply(params, video)
  assert both.shape == (2, 2, 6, 6, 16) and np.all(np.isfinite(both))
  for t in range(2):
    np.testing.assert_allclose(both[:, t], apply(params, video[:, t:t + 1])[:, 0],
                               rtol=1e-4, atol=1e-4)  # float32, other fusion


def fake_swin_v2_state_dict() -> dict[str, np.ndarray]:
  """Random tensors under the Microsoft Swin-V2 keys (embed 8, depths (2, 1), heads (1, 2))."""
  rng = np.random.default_rng(0)
  shapes = {
      "patch_embed.proj.weight": (8, 3, 4, 4), "patch_embed.proj.bias": (8,),
      "patch_embed.norm.weight": (8,), "patch_embed.norm.bias": (8,),
      "layers.0.downsample.reduction.weight": (16, 32),
      "layers.0.downsample.norm.weight": (16,), "layers.0.downsample.norm.bias": (16,),
      "norm.weight": (16,), "norm.bias": (16,), "head.weight": (1000, 16), "head.bias": (1000,),
  }
  for stage, block, dim, heads in ((0, 0, 8, 1), (0, 1, 8, 1), (1, 0, 16, 2)):
    prefix = f"layers.{stage}.blocks.{block}."
    shapes.update({
        prefix + "attn.logit_scale": (heads, 1, 1), prefix + "attn.q_bias": (dim,),
        prefix + "attn.v_bias": (dim,), prefix + "attn.cpb_mlp.0.weight": (512, 2),
        prefix + "attn.cpb_mlp.0.bias": (512,), prefix + "attn.cpb_mlp.2.weight": (heads, 512),
        prefix + "attn.relative_coords_table": (1, 7, 7, 2),
        prefix + "attn.relative_position_index": (16, 16),
        prefix + "attn.qkv.weight": (3 * dim, dim), prefix + "attn.proj.weight": (dim, dim),
        prefix + "attn.proj.bias": (dim,), prefix + "norm1.weight": (dim,),
        prefix + "norm1.bias": (dim,), prefix + "norm2.weight": (dim,),
        prefix + "norm2.bias": (dim,),
        prefix + "mlp.fc1.weight": (4 * dim, dim), prefix + "mlp.fc1.bias": (4 * dim,),
        prefix + "mlp.fc2.weight": (dim, 4 * dim), prefix + "mlp.fc2.bias": (dim,),
    })
  return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_convert_swin_v2_round_trip():
  from vqa_jax.convert import convert_swin2d  # pylint: disable=g-import-not-at-top
  from vqa_jax.models import heads  # pylint: disable=g-import-not-at-top
  backbone = swin_v2.SwinTransformerV2(embed_dim=8, depths=(2, 1), num_heads=(1, 2), window=4)
  head = heads.VQAHead(hidden_channels=4)
  abstract = {
      "backbone": jax.eval_shape(lambda: backbone.init(
          jax.random.key(0), jnp.zeros((1, 1, 32, 32, 3)), train=False))["params"],
      "head": jax.eval_shape(lambda: head.init(
          jax.random.key(0), jnp.zeros((1, 1, 1, 1, 16)), train=False))["params"]}
  head_params = head.init(jax.random.key(1), jnp.zeros((1, 1, 1, 1, 16)), train=False)["params"]
  state = fake_swin_v2_state_dict()
  params = convert_swin2d.convert_tree({"model": state}, abstract, head_params)
  attn = params["backbone"]["layers_1"]["blocks_0"]["attn"]
  np.testing.assert_array_equal(attn["cpb_mlp_0"]["kernel"],
                                state["layers.1.blocks.0.attn.cpb_mlp.0.weight"].T)
  np.testing.assert_array_equal(attn["logit_scale"], state["layers.1.blocks.0.attn.logit_scale"])
  back = convert_swin2d.to_state_dict(params)
  kept = {k: v for k, v in state.items() if not k.startswith("head.")
          and not k.endswith(("relative_position_index", "relative_coords_table"))}
  assert sorted(back) == sorted(kept)
  for key, value in kept.items():
    np.testing.assert_array_equal(back[key], value, err_msg=key)


def tiny_v2_config():
  """configs/iqa_swin_v2.py's model shrunk to fake_swin_v2_state_dict's sizes (window 4)."""
  config = load_config("iqa_swin_v2")
  m = config.model
  m.embed_dim, m.depths, m.num_heads, m.window_size = 8, (2, 1), (1, 2), (1, 4, 4)
  m.frag_biases, m.head_hidden = (False, False), 4
  return config


def test_iqa_swin_v2_config_builds_swin_v2_t_with_the_vqa_head():
  """The config's model: Swin-V2-T (hand count above) + the 768-64-1 head (49,281)."""
  from vqa_jax.config import validation  # pylint: disable=g-import-not-at-top
  from vqa_jax import families  # pylint: disable=g-import-not-at-top
  config = load_config("iqa_swin_v2")
  validation.validate(config)
  abstract = families.abstract_variables(config.model)["params"]
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))
  assert count(abstract["backbone"]) == swin_v2_t_parameters()
  assert count(abstract["head"]) == 768 * 64 + 64 + 64 + 1
  assert (config.sampling.method, config.sampling.grid * config.sampling.patch) == ("sama_iqa", 256)


def test_convert_weights_swin2d_format_fills_the_configured_swin_v2():
  """`convert_weights --format=swin2d --config=<a Swin-V2 config>` reads a V2 checkpoint."""
  from vqa_jax.convert import convert_weights  # pylint: disable=g-import-not-at-top
  state = fake_swin_v2_state_dict()
  result = convert_weights.convert(state, "swin2d",
                                   convert_weights.Options(config=tiny_v2_config()))
  params = result.variables["params"]
  assert set(result.filled) == {"params/head/fc_hid/kernel", "params/head/fc_hid/bias",
                                "params/head/fc_last/kernel", "params/head/fc_last/bias"}
  np.testing.assert_array_equal(params["backbone"]["layers_0"]["blocks_1"]["attn"]["q_bias"],
                                state["layers.0.blocks.1.attn.q_bias"])
  np.testing.assert_array_equal(params["backbone"]["patch_embed"]["proj"]["kernel"][0],
                                state["patch_embed.proj.weight"].transpose(2, 3, 1, 0))


def test_swin_v2_rejects_the_video_swin_only_switches():
  from vqa_jax.models import fast_vqa as model_lib  # pylint: disable=g-import-not-at-top
  config = tiny_v2_config()
  config.model.frag_biases = (True, False)
  with pytest.raises(ValueError, match="frag_biases"):
    model_lib.build_model(config.model)
  config = tiny_v2_config()
  config.model.window_size = (2, 4, 4)
  with pytest.raises(ValueError, match=r"window_size \(1, w, w\)"):
    model_lib.build_model(config.model)


@pytest.mark.slow  # ~28 s on 2 cores; the IQA model's forward and loss run in the default suite
def test_swin_v2_iqa_awp_step_trains_with_smooth_l1():
  """One jitted AWP step of the tiny Swin-V2 IQA model: its loss is SmoothL1 of its predictions."""
  import optax  # pylint: disable=g-import-not-at-top
  from vqa_jax import families  # pylint: disable=g-import-not-at-top
  from vqa_jax.families import losses  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import train_step  # pylint: disable=g-import-not-at-top
  config = tiny_v2_config()
  config.sampling.grid, config.sampling.patch = 2, 16
  family = families.build(config)
  params, model_state = family.init_variables(jax.random.key(0))
  video = jax.random.randint(jax.random.key(1), (4, 1, 32, 32, 3), 0, 256).astype(jnp.uint8)
  batch = {"video": video, "label": jnp.asarray([-1.0, 0.0, 0.5, 2.0])}
  (loss, (pred, _)) = family.loss_fn(params, model_state, batch, jax.random.key(2))
  np.testing.assert_allclose(loss, losses.smooth_l1_loss(pred, batch["label"]), rtol=1e-6)
  tx = optax.adamw(1e-3)
  step = jax.jit(train_step.make_train_step(
      family.loss_fn, tx, train_step.PerturbConfig(kind="awp", radius=1e-3), 0.9, stateful=True))
  state, metrics = step(train_step.create_train_state(params, tx), batch, jax.random.key(3))
  # The step draws its own dropout masks (head dropout 0.5), so its loss is another sample.
  assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["perturbed_loss"]) and metrics["perturbation_norm"] > 0
  assert int(state.step) == 1
