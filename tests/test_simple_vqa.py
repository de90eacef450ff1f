"""SimpleVQA model, its L1 + rank loss with the arguments in the intended order (paper §6.3)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests import torch_layouts
from tests.helpers import zip_leaves
from vqa_jax import families
from vqa_jax.convert import convert_resnet
from vqa_jax.families import simple_vqa_loss
from vqa_jax import perturb
from vqa_jax.models import fast_vqa as vqa_model
from vqa_jax.models import resnet
from vqa_jax.models import simple_vqa

GOLDENS = "tests/golden/simplevqa_goldens.npz"

pytestmark = pytest.mark.usefixtures("fast_compile")  # Cheaper XLA compiles.
REGRESSOR_SHAPES = {"quality.0.weight": (128, 9472), "quality.0.bias": (128,),
                    "quality.1.weight": (1, 128), "quality.1.bias": (1,)}


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _tiny_config() -> ml_collections.ConfigDict:
  cfg = simple_vqa.simple_vqa_config()
  cfg.stage_sizes = (1, 1, 1, 1)
  cfg.width = 4
  cfg.hidden = 8
  cfg.motion_dim = 6
  return cfg


def test_parameter_count_matches_reference():
  """Paper §6.3 / §10 item 3: 24,720,705 = ResNet-50 trunk 23,508,032 + regressor 1,212,673."""
  variables = families.abstract_variables(simple_vqa.simple_vqa_config())
  params = variables["params"]
  assert _count(params["backbone"]) == 23_508_032
  assert _count(params["head"]) == 9472 * 128 + 128 + 128 + 1 == 1_212_673
  assert _count(params) == 24_720_705


def test_perturbed_leaves_are_the_reference_weight_set():
  """AWP's "weight" filter: conv weights, BN gains and both Linear weights; no biases (§1.3)."""
  params = families.abstract_variables(simple_vqa.simple_vqa_config())["params"]
  selected = sum(int(np.prod(leaf.shape))
                 for leaf, keep in zip_leaves(params, perturb.weight_mask(params)) if keep)
  torch_shapes = torch_layouts.torchvision_resnet_shapes(num_classes=None) | REGRESSOR_SHAPES
  assert selected == sum(int(np.prod(s)) for k, s in torch_shapes.items() if k.endswith(".weight"))


def test_spatial_feature_dims():
  """mean+std of layer2..4: 2*512 + 2*1024 + 2*2048 = 7168 per frame."""
  trunk = resnet.resnet50()
  images = jax.ShapeDtypeStruct((3, 448, 448, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: trunk.init(jax.random.key(0), x, train=False), images)
  feats = jax.eval_shape(
      lambda v, x: simple_vqa.spatial_features(trunk.apply(v, x, train=False)), variables, images)
  assert feats.shape == (3, 7168)


def test_mean_std_pool_by_hand():
  """Channel 0 holds 1, 2, 3, 4: mean 2.5, unbiased std sqrt(5/3) (torch.std default)."""
  x = jnp.stack([jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.zeros((2, 2))], axis=-1)[None]
  np.testing.assert_allclose(simple_vqa.mean_std_pool(x), [[2.5, 0.0, np.sqrt(5 / 3), 0.0]],
                             rtol=1e-6)


def test_video_score_is_frame_mean_and_frames_are_independent():
  """Scores are per frame (B, T); changing one frame changes only its own score."""
  cfg = _tiny_config()
  model = simple_vqa.build_simple_vqa(cfg)
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (2, 3, 64, 64, 3), dtype=np.uint8)
  motion = rng.normal(size=(2, 3, cfg.motion_dim)).astype(np.float32)
  apply = jax.jit(lambda v, f, m: model.apply(v, f, m, train=False))
  variables = jax.jit(lambda f, m: model.init(jax.random.key(0), f, m, train=False))(frames, motion)
  scores = np.asarray(apply(variables, frames, motion))
  assert scores.shape == (2, 3)
  np.testing.assert_allclose(vqa_model.video_score(scores), scores.mean(axis=1), rtol=1e-6)
  frames[1, 2] = 255 - frames[1, 2]
  changed = np.asarray(apply(variables, frames, motion)) != scores
  np.testing.assert_array_equal(changed, [[False, False, False], [False, False, True]])


def test_frames_and_motion_must_agree():
  """Motion features need one row per frame."""
  model = simple_vqa.build_simple_vqa(_tiny_config())
  with pytest.raises(ValueError, match="same"):
    jax.eval_shape(lambda f, m: model.init(jax.random.key(0), f, m, train=False),
                   jax.ShapeDtypeStruct((1, 4, 64, 64, 3), jnp.uint8),
                   jax.ShapeDtypeStruct((1, 3, 6), jnp.float32))


def _golden_variables():
  state = torch_layouts.fake_state_dict(
      torch_layouts.torchvision_resnet_shapes(num_classes=None) | REGRESSOR_SHAPES, seed=1)
  return state, convert_resnet.convert_simple_vqa_state_dict(
      {f"module.{k}": v for k, v in state.items()})


def test_matches_reference_simplevqa_eval():
  """Upstream SimpleVQA (`UGC_BVQA_model.resnet50`, eval mode) on 2 videos x 2 frames, same fake
  weights, saved as a DataParallel checkpoint would be (`module.` keys).

  Golden: python tests/golden/make_simplevqa_goldens.py --simplevqa_model=... --out=...
  """
  goldens = np.load(GOLDENS)
  _, variables = _golden_variables()
  model = simple_vqa.build_simple_vqa(simple_vqa.simple_vqa_config())
  scores = jax.jit(lambda v, f, m: model.apply(v, f, m, train=False))(
      variables, goldens["simplevqa_frames"], goldens["simplevqa_motion"])
  np.testing.assert_allclose(vqa_model.video_score(scores), goldens["simplevqa_eval_score"],
                             rtol=1e-4, atol=1e-5)


def test_matches_reference_simplevqa_train_mode():
  """Train mode (batch statistics) gives the reference's scores and BatchNorm updates.

  Running means match; running variances differ by PyTorch's unbiased n/(n-1) update, with
  n = 4 images x 32 x 32 positions after conv1, i.e. a factor 4096/4095 on the new-batch term.
  """
  goldens = np.load(GOLDENS)
  state, variables = _golden_variables()
  model = simple_vqa.build_simple_vqa(simple_vqa.simple_vqa_config())
  scores, updates = jax.jit(lambda v, f, m: model.apply(v, f, m, train=True,
                                                        mutable=["batch_stats"]))(
      variables, goldens["simplevqa_frames"], goldens["simplevqa_motion"])
  np.testing.assert_allclose(vqa_model.video_score(scores), goldens["simplevqa_train_score"],
                             rtol=1e-3, atol=1e-4)
  bn1 = updates["batch_stats"]["backbone"]["bn1"]
  np.testing.assert_allclose(bn1["mean"], goldens["simplevqa_train_bn1_mean"], atol=1e-6)
  old = 0.9 * state["bn1.running_var"]
  np.testing.assert_allclose((goldens["simplevqa_train_bn1_var"] - old) / (bn1["var"] - old),
                             4096 / 4095, rtol=2e-5)


PRED = jnp.array([0.2, 0.1, 0.4, 1.0])
LABEL = jnp.array([0.1, 0.5, 0.3, 2.0])


def test_l1_rank_loss_by_hand():
  """Hard pairs (0 < |dy| < 1): (0,1), (0,2), (1,2) both ways = 6. Hinges: (0,1) 0.1 twice,
  (1,2) 0.3 twice, (0,2) 0 -> rank 0.8/6; L1 = (0.1 + 0.4 + 0.1 + 1.0)/4 = 0.4."""
  np.testing.assert_allclose(simple_vqa_loss.hard_pair_rank_loss(PRED, LABEL), 0.8 / 6,
                             rtol=1e-6)
  np.testing.assert_allclose(simple_vqa_loss.l1_rank_loss(PRED, LABEL), 0.4 + 0.8 / 6, rtol=1e-6)
  np.testing.assert_allclose(
      simple_vqa_loss.l1_rank_loss(PRED, LABEL, l1_weight=2.0, rank_weight=0.5),
      0.8 + 0.4 / 6, rtol=1e-6)


def test_rank_term_trains_the_model_only_in_the_intended_order():
  """Intended order: d rank / d pred = (2, -4, 2, 0)/6 by hand. The reference's swapped call
  `criterion(labels, outputs)` gives a rank value (1.2/12 here) whose gradient is zero."""
  grad = jax.grad(simple_vqa_loss.hard_pair_rank_loss)(PRED, LABEL)
  np.testing.assert_allclose(grad, np.array([2, -4, 2, 0]) / 6, rtol=1e-6)
  swapped = lambda p: simple_vqa_loss.hard_pair_rank_loss(LABEL, p)  # pylint: disable=unnecessary-lambda-assignment
  np.testing.assert_allclose(swapped(PRED), 1.2 / 12, rtol=1e-6)
  np.testing.assert_array_equal(jax.grad(swapped)(PRED), np.zeros(4))


def test_rank_term_without_hard_pairs_is_zero():
  """Labels more than `hard_threshold` apart give no pairs: the loss is pure L1, not NaN."""
  label = jnp.array([0.0, 10.0, 20.0])
  np.testing.assert_allclose(simple_vqa_loss.l1_rank_loss(jnp.array([1.0, 9.0, 20.0]), label),
                             2.0 / 3, rtol=1e-6)
