"""Test helpers: an element plan of `vqa_jax.data.elements` as a tf.data.Dataset in one call."""

from vqa_jax.data import elements
from vqa_jax.data import input_pipeline


def train_dataset(entries, sampling, batch_size: int, seed: int, num_steps: int, **kwargs):
  """`elements.train_plan(...)` as a tf.data.Dataset (keyword arguments as train_plan's)."""
  workers = kwargs.pop("workers", -1)
  return input_pipeline.plan_dataset(
      elements.train_plan(entries, sampling, batch_size, seed, num_steps, **kwargs), workers)


def eval_dataset(entries, sampling, batch_size: int, num_clips: int, **kwargs):
  """`elements.eval_plan(...)` as a tf.data.Dataset (keyword arguments as eval_plan's)."""
  workers = kwargs.pop("workers", -1)
  return input_pipeline.plan_dataset(
      elements.eval_plan(entries, sampling, batch_size, num_clips, **kwargs), workers)
