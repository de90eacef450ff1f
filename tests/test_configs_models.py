"""The reference configs (FAST-VQA-B, FasterVQA, FAST-VQA-M) load, validate and build their model."""

import importlib.util

import jax
import jax.numpy as jnp
import pytest

from tests.conftest import REPO_ROOT
from vqa_jax import config_base
from vqa_jax.models.model import build_model
from vqa_jax.models.model import fast_vqa_b_config

CONFIGS = ("fast_vqa_b", "faster_vqa", "fast_vqa_m")


def load_config(name: str):
  """Loads configs/<name>.py by path (as --config does) and returns its get_config()."""
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", REPO_ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_and_validates(name):
  c = load_config(name)
  config_base.validate(c)
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
