"""Tests for the VQA head, the full model and its factory."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import assert_same_structure
from vqa_jax.families import losses
from vqa_jax.models import heads
from vqa_jax.models import fast_vqa as model_lib
from vqa_jax.models import video_swin

FULL_INPUT = jax.ShapeDtypeStruct((1, 32, 224, 224, 3), jnp.uint8)
TINY_INPUT_SHAPE = (2, 8, 32, 32, 3)


pytestmark = pytest.mark.usefixtures("fast_compile")


def _num_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def _tiny_config(**overrides):
  cfg = model_lib.fast_vqa_b_config()
  cfg.embed_dim = 16
  cfg.depths = (1, 2)  # Stage 2 has a shifted block.
  cfg.num_heads = (1, 2)
  cfg.window_size = (2, 4, 4)
  cfg.frag_biases = (True, True)
  cfg.fragments_grid = 4
  cfg.drop_path_rate = 0.3
  cfg.head_dropout = 0.5
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


# ---------------------------------------------------------------------------
# Pure functions and config.
# ---------------------------------------------------------------------------


def test_normalize_video():
  rng = np.random.default_rng(0)
  video = rng.integers(0, 256, size=(2, 3, 4, 5, 3), dtype=np.uint8)
  out = model_lib.normalize_video(video)
  assert out.dtype == jnp.float32 and out.shape == video.shape
  pixel = video[1, 2, 3, 4].astype(np.float64)
  expected = (pixel - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
  np.testing.assert_allclose(out[1, 2, 3, 4], expected, rtol=1e-6)
  np.testing.assert_allclose(
      model_lib.normalize_video(video.astype(np.float32)), out, rtol=1e-7)


def test_video_score_is_mean_over_positions():
  qmap = jnp.arange(2 * 16 * 7 * 7, dtype=jnp.float32).reshape(2, 16, 7, 7)
  np.testing.assert_allclose(
      model_lib.video_score(qmap),
      [np.arange(784).mean(), np.arange(784, 1568).mean()], rtol=1e-6)


def test_fast_vqa_b_config():
  cfg = model_lib.fast_vqa_b_config()
  assert set(cfg.keys()) == {
      "name", "backbone", "patch_size", "embed_dim", "depths", "num_heads", "window_size",
      "mlp_ratio", "drop_path_rate", "frag_biases", "fragments_grid",
      "head_hidden", "head_dropout", "remat", "remat_policy", "dtype", "matmul_precision",
      "base_x_size"}
  assert cfg.name == "fast_vqa"  # the model family
  # Performance switches default off; no adaptive window.
  assert (cfg.remat, cfg.remat_policy, cfg.dtype, cfg.matmul_precision) == (
      False, "", "float32", "default")
  assert cfg.base_x_size is None
  assert cfg.backbone == "video_swin"
  assert tuple(cfg.patch_size) == (2, 4, 4)
  assert cfg.embed_dim == 96
  assert tuple(cfg.depths) == (2, 2, 6, 2)
  assert tuple(cfg.num_heads) == (3, 6, 12, 24)
  assert tuple(cfg.window_size) == (8, 7, 7)
  assert cfg.mlp_ratio == 4.0 and cfg.drop_path_rate == 0.1
  assert tuple(cfg.frag_biases) == (True, True, True, False)
  assert cfg.fragments_grid == 7
  assert cfg.head_hidden == 64 and cfg.head_dropout == 0.5


def test_build_model_rejects_unknown_dtype():
  with pytest.raises(ValueError):
    model_lib.build_model(_tiny_config(dtype="float16"))


def test_build_model_rejects_unknown_remat_policy():
  with pytest.raises(ValueError, match="remat policy"):
    model_lib.build_model(_tiny_config(remat=True, remat_policy="save_it_all"))


# ---------------------------------------------------------------------------
# Head.
# ---------------------------------------------------------------------------


def test_head_params_and_init():
  head = heads.VQAHead(hidden_channels=64, dropout_rate=0.5)
  x = jnp.zeros((1, 2, 3, 3, 768))
  params = jax.jit(lambda x: head.init(jax.random.key(0), x, train=False))(x)
  params = params["params"]
  assert _num_params(params) == 49_281
  assert params["fc_hid"]["kernel"].shape == (1, 1, 1, 768, 64)
  assert params["fc_last"]["kernel"].shape == (1, 1, 1, 64, 1)
  for name, fan_in in (("fc_hid", 768), ("fc_last", 64)):
    for leaf in ("kernel", "bias"):
      values = np.asarray(params[name][leaf])
      assert np.abs(values).max() <= 1.0 / np.sqrt(fan_in)
  # Uniform, not constant: the kernel spans most of its bound.
  assert np.abs(np.asarray(params["fc_hid"]["kernel"])).max() > 0.9 / np.sqrt(
      768)
  out = head.apply({"params": params}, x, train=False)
  assert out.shape == (1, 2, 3, 3, 1) and out.dtype == jnp.float32


# ---------------------------------------------------------------------------
# Full-size model via eval_shape.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_full_model_shapes_and_counts(dtype):
  cfg = model_lib.fast_vqa_b_config()
  cfg.dtype = dtype
  model = model_lib.build_model(cfg)

  def init_and_run(video):
    variables = model.init(jax.random.key(0), video, train=False)
    return variables, model.apply(variables, video, train=False)

  variables, qmap = jax.eval_shape(init_and_run, FULL_INPUT)
  assert qmap.shape == (1, 16, 7, 7) and qmap.dtype == jnp.float32
  params = variables["params"]
  assert set(params) == {"backbone", "head"}
  assert _num_params(params["backbone"]) == 28_078_620
  assert _num_params(params["head"]) == 49_281
  assert _num_params(params) == 28_127_901
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  assert sum(int(np.prod(v.shape)) for k, v in flat.items()
             if k[-1] in ("kernel", "scale")) == 27_497_632
  assert all(v.dtype == jnp.float32 for v in flat.values())


# ---------------------------------------------------------------------------
# Tiny model forward passes.
# ---------------------------------------------------------------------------


def _apply_fn(train, **overrides):
  """Jitted apply of the tiny model with config overrides (memoized)."""
  return _cached_apply_fn(train, tuple(sorted(overrides.items())))


@functools.lru_cache(maxsize=None)
def _cached_apply_fn(train, overrides):
  model = model_lib.build_model(_tiny_config(**dict(overrides)))
  return jax.jit(lambda v, x, key: model.apply(
      v, x, train=train, rngs={"dropout": key}))


@pytest.fixture(scope="module")
def tiny():
  """Variables of the tiny model and a uint8 input video."""
  model = model_lib.build_model(_tiny_config())
  video = jax.random.randint(jax.random.key(1), TINY_INPUT_SHAPE, 0, 256
                             ).astype(jnp.uint8)
  # The rbg PRNG compiles much faster than threefry on CPU.
  init_key = jax.random.key(0, impl="rbg")
  variables = jax.jit(lambda x: model.init(init_key, x, train=False))(video)
  return variables, video


def test_tiny_forward_eval(tiny):
  variables, video = tiny
  apply_eval = _apply_fn(False)
  out = apply_eval(variables, video, jax.random.key(0))
  assert out.shape == (2, 4, 4, 4) and out.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(out)))
  assert model_lib.video_score(out).shape == (2,)
  # Deterministic: dropout rngs are ignored in eval mode.
  np.testing.assert_array_equal(out, apply_eval(variables, video,
                                                jax.random.key(7)))
  # Float input on the 0-255 scale gives the same result as uint8.
  np.testing.assert_allclose(
      apply_eval(variables, video.astype(jnp.float32), jax.random.key(0)),
      out, rtol=1e-6, atol=1e-6)
  # Drop path and dropout have no effect in eval mode.
  no_drop = _apply_fn(False, drop_path_rate=0.0, head_dropout=0.0)
  np.testing.assert_allclose(no_drop(variables, video, jax.random.key(0)), out,
                             rtol=1e-6, atol=1e-6)


def test_tiny_forward_train_uses_dropout_rng(tiny):
  variables, video = tiny
  apply_train = _apply_fn(True)
  out_a = apply_train(variables, video, jax.random.key(1))
  out_b = apply_train(variables, video, jax.random.key(2))
  assert bool(jnp.all(jnp.isfinite(out_a)))
  assert float(jnp.max(jnp.abs(out_a - out_b))) > 1e-4
  np.testing.assert_array_equal(out_a, apply_train(variables, video,
                                                   jax.random.key(1)))
  # Drop path alone (no head dropout) also makes training stochastic.
  path_only = _apply_fn(True, head_dropout=0.0)
  eval_fn = _apply_fn(False)
  diffs = [float(jnp.max(jnp.abs(path_only(variables, video, jax.random.key(k))
                                 - eval_fn(variables, video,
                                           jax.random.key(0)))))
           for k in range(3)]
  assert max(diffs) > 1e-5


def test_remat_matches(tiny):
  variables, video = tiny
  key = jax.random.key(3)
  for train in (False, True):
    ref = _apply_fn(train)(variables, video, key)
    out = _apply_fn(train, remat=True)(variables, video, key)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def _tiny_loss_and_grad(cfg_overrides, variables, video):
  """Jitted (loss, param grads) of PLCC + 0.3 rank of the tiny model in train mode."""
  model = model_lib.build_model(_tiny_config(**cfg_overrides))
  label = jnp.arange(video.shape[0], dtype=jnp.float32)

  def loss(params):
    qmap = model.apply({"params": params}, video, train=True,
                       rngs={"dropout": jax.random.key(5)})
    return losses.vqa_loss(model_lib.video_score(qmap), label)

  return jax.jit(jax.value_and_grad(loss))(variables["params"])


def test_remat_model_gradients_match(tiny):
  """Whole-model train-mode gradients (dropout, drop path on) are unchanged by remat."""
  variables, video = tiny
  ref_loss, ref_grads = _tiny_loss_and_grad({}, variables, video)
  for policy in ("", "dots_saveable"):
    loss, grads = _tiny_loss_and_grad(dict(remat=True, remat_policy=policy),
                                      variables, video)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        grads, ref_grads)


def test_remat_inserts_one_checkpoint_per_block(tiny):
  """The gradient's jaxpr holds one remat (jax.checkpoint) per Swin block, none without remat."""
  variables, video = tiny

  def count_remat(**overrides):
    model = model_lib.build_model(_tiny_config(**overrides))
    loss = lambda p: jnp.sum(model.apply({"params": p}, video, train=False))
    jaxpr = jax.make_jaxpr(jax.grad(loss))(variables["params"])
    return str(jaxpr).count("remat2[")

  num_blocks = sum(_tiny_config().depths)
  assert count_remat() == 0
  assert count_remat(remat=True) == num_blocks == 3
  assert count_remat(remat=True, remat_policy="dots_saveable") == num_blocks


def test_remat_gradients_match():
  """Block-level check: nn.remat leaves parameter and input gradients intact."""
  x = jax.random.normal(jax.random.key(4), (2, 4, 4, 4, 8))
  grads, variables = [], None
  for remat in (False, True):
    layer = video_swin.BasicLayer(
        dim=8, depth=2, num_heads=2, window_size=(2, 4, 4), frag_bias=True,
        fragments_grid=2, remat=remat)
    if variables is None:
      variables = jax.jit(lambda x, layer=layer: layer.init(
          jax.random.key(0, impl="rbg"), x, False))(x)
    loss = lambda v, x, layer=layer: jnp.sum(layer.apply(v, x, False) ** 2)
    grads.append(jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x))
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
      grads[0], grads[1])


def test_bfloat16_close_to_float32(tiny):
  """bf16 compute: the quality map is within 5% of its f32 scale (bf16 keeps 8 mantissa bits)."""
  variables, video = tiny
  key = jax.random.key(0)
  ref = _apply_fn(False)(variables, video, key)
  out = _apply_fn(False, dtype="bfloat16")(variables, video, key)
  assert out.dtype == jnp.float32
  scale = float(jnp.max(jnp.abs(ref)))
  assert float(jnp.max(jnp.abs(out - ref))) < 0.05 * scale + 1e-3
  assert float(jnp.max(jnp.abs(out - ref))) > 0.0  # Really ran in bf16.


def test_bfloat16_params_stay_float32_and_grads_are_finite(tiny):
  """bf16 init gives float32 params; the bf16 loss and its float32 gradients are finite and
  point the same way as the f32 ones (cosine > 0.99 over all parameters)."""
  _, video = tiny
  model = model_lib.build_model(_tiny_config(dtype="bfloat16"))
  init_key = jax.random.key(0, impl="rbg")
  variables = jax.jit(lambda x: model.init(init_key, x, train=False))(video)
  leaves = jax.tree_util.tree_leaves(variables["params"])
  assert leaves and all(leaf.dtype == jnp.float32 for leaf in leaves)

  loss, grads = _tiny_loss_and_grad({"dtype": "bfloat16"}, variables, video)
  ref_loss, ref_grads = _tiny_loss_and_grad({}, variables, video)
  assert bool(jnp.isfinite(loss))
  assert_same_structure(grads, ref_grads)
  grad_leaves = jax.tree_util.tree_leaves(grads)
  assert all(g.dtype == jnp.float32 for g in grad_leaves)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in grad_leaves)
  flat = jnp.concatenate([g.ravel() for g in grad_leaves])
  ref_flat = jnp.concatenate([g.ravel() for g in jax.tree_util.tree_leaves(ref_grads)])
  cosine = jnp.dot(flat, ref_flat) / (jnp.linalg.norm(flat) * jnp.linalg.norm(ref_flat))
  assert float(cosine) > 0.99
  assert abs(float(loss) - float(ref_loss)) < 0.05 * abs(float(ref_loss)) + 1e-3
