"""Test helpers: an element plan of `vqa_jax.data.element_plan` as a tf.data.Dataset in one call."""

from vqa_jax.data import element_plan
from vqa_jax.data import input_pipeline


def train_dataset(entries, sampling, batch_size: int, seed: int, num_steps: int, **kwargs):
  """`element_plan.train_plan(...)` as a tf.data.Dataset (keyword arguments as train_plan's)."""
  workers = kwargs.pop("workers", -1)
  return input_pipeline.plan_dataset(
      element_plan.train_plan(entries, sampling, batch_size, seed, num_steps, **kwargs), workers)


def eval_dataset(entries, sampling, batch_size: int, num_clips: int, **kwargs):
  """`element_plan.eval_plan(...)` as a tf.data.Dataset (keyword arguments as eval_plan's)."""
  workers = kwargs.pop("workers", -1)
  return input_pipeline.plan_dataset(
      element_plan.eval_plan(entries, sampling, batch_size, num_clips, **kwargs), workers)
