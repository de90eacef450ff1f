"""SimpleVQA (paper §6.3): ResNet-50 spatial features of 1 frame/s + SlowFast motion features.

Per frame t of a video: the layer2, layer3 and layer4 outputs of a ResNet-50 are each reduced by a
global mean and a global *unbiased* standard deviation over H*W, concatenated in the reference's
order (mean2, std2, mean3, std3, mean4, std4: 2*512 + 2*1024 + 2*2048 = 7168), followed by that
second's motion feature (SlowFast slow 2048 + fast 256 = 2304). A per-frame regressor
Linear(9472 -> 128) -> Linear(128 -> 1), with no non-linearity in between, gives one score per frame;
the video score is their mean (`video_score` of models/model.py on the returned (B, T) map).

Parameters: `backbone` (the ResNet trunk, 23,508,032) and `head` (the regressor, 1,212,673), the
optimizer's two learning-rate groups; 24,720,705 in all. BatchNorm running statistics live in the
`batch_stats` collection. The motion features are inputs (precomputed by
`python -m vqa_jax.simple_vqa_features`, or computed on the fly with `slowfast.chunk_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vqa_jax.config.sections import RESNET50_STAGE_SIZES
from vqa_jax.config.sections import simple_vqa_config  # pylint: disable=unused-import  (the default)
from vqa_jax.models.fast_vqa import normalize_video
from vqa_jax.models.resnet import ResNet
from vqa_jax.models.video_swin import uniform_fan_in_init

Dtype = Any

POOLED_STAGES = (1, 2, 3)  # layer2, layer3, layer4 (0-based stage indices).
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def mean_std_pool(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, 2C): global mean, then unbiased std (torch.std) over H*W, in float32."""
  x = x.astype(jnp.float32).reshape(x.shape[0], -1, x.shape[-1])
  return jnp.concatenate([jnp.mean(x, axis=1), jnp.std(x, axis=1, ddof=1)], axis=-1)


def spatial_features(stages: Sequence[jax.Array]) -> jax.Array:
  """ResNet stage outputs -> the concatenated mean/std pools of layer2..layer4, (N, 7168)."""
  return jnp.concatenate([mean_std_pool(stages[i]) for i in POOLED_STAGES], axis=-1)


class QualityRegressor(nn.Module):
  """Linear(in -> hidden) -> Linear(hidden -> 1), no activation; PyTorch Linear init."""
  hidden: int = 128

  @nn.compact
  def __call__(self, features):
    """(..., in) -> (...,) per-frame scores in float32."""
    features = features.astype(jnp.float32)
    in_dim = features.shape[-1]
    x = nn.Dense(self.hidden, kernel_init=uniform_fan_in_init(in_dim),
                 bias_init=uniform_fan_in_init(in_dim), name="hidden")(features)
    x = nn.Dense(1, kernel_init=uniform_fan_in_init(self.hidden),
                 bias_init=uniform_fan_in_init(self.hidden), name="out")(x)
    return x[..., 0]


class SimpleVQA(nn.Module):
  """Frames uint8 (B, T, H, W, 3) on 0-255 + motion (B, T, D) -> per-frame scores (B, T)."""
  stage_sizes: Sequence[int] = RESNET50_STAGE_SIZES
  width: int = 64
  hidden: int = 128
  dtype: Dtype = jnp.float32

  def setup(self):
    """The ResNet trunk (`backbone`) and the regressor (`head`)."""
    self.backbone = ResNet(self.stage_sizes, self.width, dtype=self.dtype)
    self.head = QualityRegressor(self.hidden)

  def __call__(self, frames, motion, *, train: bool):
    """ImageNet-normalises the frames, pools the trunk, regresses each frame; returns (B, T)."""
    if frames.shape[:2] != motion.shape[:2]:
      raise ValueError(f"frames {frames.shape} and motion features {motion.shape} need the same "
                       "(batch, frames) leading axes")
    b, t = frames.shape[:2]
    images = normalize_video(frames).reshape((b * t,) + frames.shape[2:])
    feats = spatial_features(self.backbone(images, train=train))
    feats = jnp.concatenate([feats, motion.reshape(b * t, -1).astype(jnp.float32)], axis=-1)
    return self.head(feats).reshape(b, t)


def build_simple_vqa(model_cfg: ml_collections.ConfigDict) -> SimpleVQA:
  """A `SimpleVQA` from a config like `simple_vqa_config()`."""
  if model_cfg.dtype not in _DTYPES:
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {model_cfg.dtype!r}")
  return SimpleVQA(tuple(model_cfg.stage_sizes), int(model_cfg.width), int(model_cfg.hidden),
                   dtype=_DTYPES[model_cfg.dtype])
