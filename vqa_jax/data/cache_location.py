"""Where generated data (synthetic sets, TFDS builds, pretrained weights) lives on disk."""

import os

import ml_collections


def default_cache_dir() -> str:
  """$VQA_JAX_CACHE, else ~/.cache/vqa_jax: where generated data lives unless data.cache_dir says."""
  return (os.environ.get("VQA_JAX_CACHE")
          or os.path.join(os.path.expanduser("~"), ".cache", "vqa_jax"))


def cache_dir(data_cfg: ml_collections.ConfigDict) -> str:
  """Where generated data lives: data.cache_dir, else $VQA_JAX_CACHE, else ~/.cache/vqa_jax."""
  return data_cfg.cache_dir or default_cache_dir()
