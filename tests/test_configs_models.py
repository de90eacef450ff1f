"""The reference configs (FAST-VQA-B, FasterVQA, FAST-VQA-M) load, validate and build their model."""

import math

import jax
import jax.numpy as jnp
import pytest

from tests.helpers import load_config
from vqa_jax.config import validation
from vqa_jax.models import video_swin
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.models.fast_vqa import fast_vqa_b_config

CONFIGS = ("fast_vqa_b", "faster_vqa", "fast_vqa_m")


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_and_validates(name):
  c = load_config(name)
  validation.validate(c)
  assert c.data.source == "label_files"
  assert set(c.data.label_files.keys()) >= {c.data.train_split, *c.data.eval_splits}


def test_fast_vqa_b_recipe():
  c = load_config("fast_vqa_b")
  assert c.model.to_dict() == fast_vqa_b_config().to_dict()
  s = c.sampling
  assert (s.grid, s.patch, s.clip_len, s.frame_interval) == (7, 32, 32, 2)
  assert (s.num_clips_train, s.num_clips_eval) == (1, 4)
  t = c.train
  assert (t.batch_size, t.learning_rate, t.backbone_lr_mult, t.weight_decay) == (16, 1e-3, 0.1, 0.05)
  assert (t.warmup_steps, t.cosine_steps, t.steps, t.ema_decay) == (4385, 52620, 52620, 0.999)
  assert (c.perturb.kind, c.perturb.gamma) == ("awp", 1e-4)


def test_faster_and_m_variants():
  faster = load_config("faster_vqa")
  assert faster.model.to_dict() == fast_vqa_b_config().to_dict()
  assert faster.sampling.clip_len == 8 * 4 and faster.sampling.num_clips_eval == 1
  m = load_config("fast_vqa_m")
  assert (m.sampling.grid, m.sampling.patch, m.sampling.clip_len) == (4, 32, 16)
  assert tuple(m.model.window_size) == (4, 4, 4)
  assert not any(m.model.frag_biases)


def _quality_map_shape(c):
  """eval_shape of the config's model on one clip of the config's input size."""
  s = c.sampling
  model = build_model(c.model)
  video = jax.ShapeDtypeStruct((1, s.clip_len, s.grid * s.patch, s.grid * s.patch, 3), jnp.uint8)

  def apply(v):
    params = model.init(jax.random.key(0), v, train=False)
    return model.apply(params, v, train=False)

  return jax.eval_shape(apply, video).shape


def test_fast_vqa_b_quality_map_shape():
  assert _quality_map_shape(load_config("fast_vqa_b")) == (1, 16, 7, 7)


def test_fast_vqa_m_quality_map_shape():
  assert _quality_map_shape(load_config("fast_vqa_m")) == (1, 8, 4, 4)


def _swin_t_param_count(table_rows: int, frag_stages: tuple[int, ...]) -> int:
  """Video Swin-T (patch 2x4x4, dims 96..768, depths 2/2/6/2, heads 3/6/12/24) parameters.

  Per block of width C with h heads: norm1 2C + qkv 3C²+3C + proj C²+C + norm2 2C + fc1 4C²+4C
  + fc2 4C²+C = 12C² + 13C, plus h·rows per position table (one, two with a fragment table).
  Patch embed 2·4·4·3·96 + 96 + LN 192; PatchMerging after stages 1-3: LN 8C + Linear 8C²;
  final LN 2·768.
  """
  total = 2 * 4 * 4 * 3 * 96 + 96 + 2 * 96 + 2 * 768
  for stage, (dim, depth, heads) in enumerate(zip((96, 192, 384, 768), (2, 2, 6, 2),
                                                  (3, 6, 12, 24))):
    tables = 2 if stage in frag_stages else 1
    total += depth * (12 * dim * dim + 13 * dim + tables * heads * table_rows)
    if stage < 3:
      total += 8 * dim * dim + 8 * dim
  return total


HEAD_PARAMS = 768 * 64 + 64 + 64 * 1 + 1  # 49,281 (paper §6.1).


def test_swin_t_param_formula_matches_paper():
  """The formula reproduces paper §6.1/§10 item 3: window (8,7,7) has 15·13·13 = 2535 rows."""
  assert _swin_t_param_count(2535, ()) == 27_850_470
  assert _swin_t_param_count(2535, (0, 1, 2)) == 28_078_620
  assert _swin_t_param_count(2535, (0, 1, 2)) + HEAD_PARAMS == 28_127_901


def test_fast_vqa_m_model_matches_upstream():
  """FAST-VQA-M = upstream `SwinTransformer3D(window_size=(4,4,4), frag_biases=[0,0,0,0])`.

  Tables of 7·7·7 = 343 rows and no fragment tables: 27,850,470 − 138·2535 + 138·343 =
  27,547,974 backbone parameters, 27,597,255 with the head. The reference's adaptive window
  (base 32x224x224) is on, so the 16x128x128 input attends in (2, 2, 2) windows.
  """
  m = load_config("fast_vqa_m")
  assert tuple(m.model.base_x_size) == (32, 224, 224)
  assert m.sampling.frame_interval == 2 and m.sampling.num_clips_eval == 4
  model = build_model(m.model)
  s = m.sampling
  video = jax.ShapeDtypeStruct((1, s.clip_len, s.grid * s.patch, s.grid * s.patch, 3), jnp.uint8)
  params = jax.eval_shape(lambda v: model.init(jax.random.key(0), v, train=False), video)["params"]
  count = lambda tree: sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(tree))
  assert count(params["backbone"]) == _swin_t_param_count(343, ()) == 27_547_974
  assert count(params) == 27_547_974 + HEAD_PARAMS == 27_597_255
  assert video_swin.adaptive_window_size(m.model.window_size, video.shape[1:4],
                                         m.model.base_x_size) == (2, 2, 2)
