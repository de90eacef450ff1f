"""The warmup+cosine schedule follows train.steps unless its step counts are set."""

import math

from tests.helpers import load_config
from vqa_jax.config import config_base
from vqa_jax.config import validation
from vqa_jax.training import optim


def resolved(config, steps=None):
  """(warmup, cosine) after `--config.train.steps=steps` and validation's resolution."""
  if steps is not None:
    config.train.steps = steps
  validation.resolve_schedule(config)
  return config.train.warmup_steps, config.train.cosine_steps


def test_base_config_follows_with_the_reference_share():
  assert resolved(config_base.base_config()) == (4385, 52620)  # 52620 / 12, the old numbers
  assert resolved(config_base.base_config(), 100) == (8, 100)  # round(100 * 2.5 / 30 = 8.33)


def test_demo_keeps_its_numbers_and_scales_with_steps():
  assert resolved(load_config("demo")) == (40, 1000)  # what demo.py set explicitly before
  assert resolved(load_config("demo"), 200) == (8, 200)  # WORKSPACE's override example: 0.04 x 200


def test_explicit_step_counts_are_kept():
  assert resolved(load_config("fast_vqa_b"), 100) == (4385, 52620)
  assert resolved(load_config("smoke"), 60) == (2, 60)  # warmup 2 set, cosine follows


def test_last_step_learning_rate_of_an_overridden_run_is_near_zero():
  config = load_config("smoke")
  resolved(config, 60)
  peak = config.train.learning_rate
  last = optim.learning_rates(config.train, 59)["lr_head"]  # the 60th update
  assert math.isclose(last, peak * 0.5 * (1 + math.cos(math.pi * (59 - 2) / 60)), rel_tol=1e-5)
  assert last <= 1e-2 * peak


def test_schedule_line_names_the_resolved_counts():
  config = load_config("smoke")
  resolved(config, 60)
  line = optim.describe_schedule(config.train)
  assert "warmup 2 steps, cosine length 60, 60 steps" in line
