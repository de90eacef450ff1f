"""SlowFast-R50 (pytorchvideo `slowfast_r50`, Kinetics-400 8x8) as a frozen motion-feature extractor.

Matches pytorchvideo's `create_slowfast` defaults with `slowfast_fusion_conv_kernel_size=(7, 1, 1)`
(the `slowfast_r50` hub entry): two pathways, slow (8 frames, width 64) and fast (32 frames,
width 64/8 = 8, i.e. beta = 1/8, alpha = 4). Stems: Conv3d (1,7,7) resp. (5,7,7) stride (1,2,2),
BatchNorm, ReLU, MaxPool3d (1,3,3)/(1,2,2). Four stages of 3-D Bottleneck blocks (depths 3,4,6,3)
whose temporal kernel sits on conv_a ((1,1,1) in slow stages 1-2, (3,1,1) elsewhere) and whose
spatial stride sits on conv_b ((1,3,3), strides 1,2,2,2). After the stem and stages 1-3 a lateral
Conv3d (7,1,1) stride (4,1,1) (fast -> slow, 2x the fast channels), BatchNorm and ReLU is
concatenated to the slow pathway. The pooled outputs are the slow 2048-d and fast 256-d features
(2304 per one-second chunk) that SimpleVQA feeds its regressor (paper §6.3).

Pooling follows SimpleVQA's extractor: the head's AvgPool3d ((8,7,7) slow, (32,7,7) fast, stride 1,
no padding) and then a global average. At the 224x224 input of upstream SimpleVQA both are a plain
global mean; below 224 the 7x7 window does not fit the 4x4 map and, as in PyTorch, it is an error.

Module names follow pytorchvideo: `stem_{slow,fast}/{conv,norm}`, `fusion_{0..3}/{conv,norm}`
(`blocks.{i}.multipathway_fusion`), `stage{1..4}_{slow,fast}/block_{j}/{branch1_conv,
branch1_norm,conv_a,norm_a,conv_b,norm_b,conv_c,norm_c}`. Channels-last: (B, T, H, W, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.models.resnet import batch_norm
from vqa_jax.models.resnet import conv
from vqa_jax.models.resnet import EXPANSION
from vqa_jax.models.resnet import max_pool_3x3_s2
from vqa_jax.models.resnet import RESNET50_STAGE_SIZES

Dtype = Any

PATHWAYS = ("slow", "fast")
KINETICS_MEAN = 0.45  # SimpleVQA's SlowFast normalisation, on the 0-1 scale.
KINETICS_STD = 0.225
# conv_a temporal kernel per stage and pathway (pytorchvideo `stage_conv_a_kernel_sizes`).
CONV_A_TEMPORAL = {"slow": (1, 1, 3, 3), "fast": (3, 3, 3, 3)}
STEM_TEMPORAL = {"slow": 1, "fast": 5}


def normalize_clip(clip: jax.Array) -> jax.Array:
  """RGB on the 0-255 scale -> float32 (x/255 - 0.45) / 0.225, SimpleVQA's SlowFast input."""
  return (jnp.asarray(clip).astype(jnp.float32) / 255.0 - KINETICS_MEAN) / KINETICS_STD


def slow_indices(num_frames: int, alpha: int = 4) -> np.ndarray:
  """Fast-pathway frame indices the slow pathway keeps: long(linspace(0, T-1, T // alpha))."""
  return np.linspace(0, num_frames - 1, num_frames // alpha).astype(np.int64)


class Stem(nn.Module):
  """Conv3d (t,7,7) stride (1,2,2) -> BatchNorm -> ReLU -> MaxPool3d (1,3,3)/(1,2,2)."""
  features: int
  temporal_kernel: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    """(B, T, H, W, 3) -> (B, T, H/4, W/4, features)."""
    x = conv(self.features, (self.temporal_kernel, 7, 7), (1, 2, 2), dtype=self.dtype,
             name="conv")(x)
    x = nn.relu(batch_norm(train=train, dtype=self.dtype, name="norm")(x))
    return max_pool_3x3_s2(x, spatial_dims=2)


class FuseFastToSlow(nn.Module):
  """Lateral connection: Conv3d (k,1,1) stride (alpha,1,1) on fast, BN, ReLU, concat to slow."""
  features: int
  kernel: int = 7
  alpha: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, slow, fast, *, train: bool):
    """Returns the slow pathway with `features` extra channels from the fast one."""
    fuse = conv(self.features, (self.kernel, 1, 1), (self.alpha, 1, 1), dtype=self.dtype,
                name="conv")(fast)
    fuse = nn.relu(batch_norm(train=train, dtype=self.dtype, name="norm")(fuse))
    return jnp.concatenate([slow, fuse], axis=-1)


class _Bottleneck(nn.Module):
  """The fields of a bottleneck block and of a stage of them (its first block's stride)."""
  inner: int  # conv_a / conv_b width; the block's output has EXPANSION times as many channels
  temporal_kernel: int  # conv_a's (t, 1, 1)
  spatial_stride: int = 1
  dtype: Dtype = jnp.float32


class Bottleneck3D(_Bottleneck):
  """pytorchvideo ResBlock: conv_a (t,1,1) -> conv_b (1,3,3) stride -> conv_c 1x1x1, + shortcut."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    """(B, T, H, W, C) -> (B, T, H/stride, W/stride, EXPANSION*inner)."""
    out = self.inner * EXPANSION
    stride = (1, self.spatial_stride, self.spatial_stride)
    y = conv(self.inner, (self.temporal_kernel, 1, 1), dtype=self.dtype, name="conv_a")(x)
    y = nn.relu(batch_norm(train=train, dtype=self.dtype, name="norm_a")(y))
    y = conv(self.inner, (1, 3, 3), stride, dtype=self.dtype, name="conv_b")(y)
    y = nn.relu(batch_norm(train=train, dtype=self.dtype, name="norm_b")(y))
    y = conv(out, (1, 1, 1), dtype=self.dtype, name="conv_c")(y)
    y = batch_norm(train=train, dtype=self.dtype, name="norm_c")(y)
    if x.shape[-1] != out or self.spatial_stride != 1:
      x = conv(out, (1, 1, 1), stride, dtype=self.dtype, name="branch1_conv")(x)
      x = batch_norm(train=train, dtype=self.dtype, name="branch1_norm")(x)
    return nn.relu(x + y)


class ResStage3D(_Bottleneck, kw_only=True):
  """`num_blocks` Bottleneck3D blocks (`block_{j}`); the first one carries the spatial stride."""
  num_blocks: int

  @nn.compact
  def __call__(self, x, *, train: bool):
    """(B, T, H, W, C) -> (B, T, H/stride, W/stride, EXPANSION*inner)."""
    for block in range(self.num_blocks):
      x = Bottleneck3D(self.inner, self.temporal_kernel, self.spatial_stride if block == 0 else 1,
                       dtype=self.dtype, name=f"block_{block}")(x, train=train)
    return x


def pool_features(x: jax.Array, window: Sequence[int]) -> jax.Array:
  """AvgPool3d(window, stride 1, no padding) then a global mean: (B, T, H, W, C) -> (B, C)."""
  window = tuple(int(w) for w in window)
  if any(w > s for w, s in zip(window, x.shape[1:4])):
    raise ValueError(f"SlowFast head pool window {window} is larger than the final feature map "
                     f"{x.shape[1:4]}: the input clip is too small (SimpleVQA uses 224x224)")
  pooled = nn.avg_pool(x.astype(jnp.float32), window, strides=(1, 1, 1), padding="VALID")
  return jnp.mean(pooled, axis=(1, 2, 3))


class SlowFast(nn.Module):
  """SlowFast trunk + SimpleVQA pooling: (slow, fast) clips -> (slow (B, 32w), fast (B, 32w/beta)).

  `width` is the slow stem width (64), `beta_inv` the slow/fast channel ratio (8),
  `fusion_ratio` the lateral conv's channel multiplier (2), `alpha` the frame-rate ratio (4),
  `head_pool` the (t, h, w) AvgPool3d windows of the slow and fast pathways.
  """
  stage_sizes: Sequence[int] = RESNET50_STAGE_SIZES
  width: int = 64
  beta_inv: int = 8
  alpha: int = 4
  fusion_ratio: int = 2
  fusion_kernel: int = 7
  head_pool: Sequence[Sequence[int]] = ((8, 7, 7), (32, 7, 7))
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, slow, fast, *, train: bool = False):
    """Normalised clips (B, T/alpha, H, W, 3), (B, T, H, W, 3) -> (slow, fast) pooled features."""
    widths = {"slow": self.width, "fast": self.width // self.beta_inv}
    x = {p: Stem(widths[p], STEM_TEMPORAL[p], dtype=self.dtype, name=f"stem_{p}")(
        clip.astype(self.dtype), train=train) for p, clip in zip(PATHWAYS, (slow, fast))}
    num_stages = len(self.stage_sizes)
    for stage in range(num_stages + 1):
      if stage > 0:  # Stage `stage` of both pathways (after the stem at stage 0).
        for p in PATHWAYS:
          x[p] = ResStage3D(widths[p] * 2**(stage - 1), CONV_A_TEMPORAL[p][stage - 1],
                            1 if stage == 1 else 2, dtype=self.dtype,
                            num_blocks=self.stage_sizes[stage - 1],
                            name=f"stage{stage}_{p}")(x[p], train=train)
      if stage < num_stages:  # pytorchvideo fuses after the stem and stages 1..N-1.
        x["slow"] = FuseFastToSlow(self.fusion_ratio * x["fast"].shape[-1], self.fusion_kernel,
                                   self.alpha, dtype=self.dtype,
                                   name=f"fusion_{stage}")(x["slow"], x["fast"], train=train)
    return tuple(pool_features(x[p], window) for p, window in zip(PATHWAYS, self.head_pool))


def example_clips(model: SlowFast) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
  """The smallest (slow, fast) clip shapes that fit `model.head_pool` (for init / eval_shape)."""
  (ts, hs, ws), (tf, hf, wf) = model.head_pool
  side = 32 * max(hs, ws, hf, wf)
  return (jax.ShapeDtypeStruct((1, ts, side, side, 3), jnp.float32),
          jax.ShapeDtypeStruct((1, tf, side, side, 3), jnp.float32))


def slowfast_r50(dtype: Dtype = jnp.float32) -> SlowFast:
  """pytorchvideo's `slowfast_r50` trunk (Kinetics-400 8x8): 2048 + 256 pooled features."""
  return SlowFast(dtype=dtype)


def chunk_features(model: SlowFast, variables, chunks: jax.Array) -> jax.Array:
  """uint8 chunks (N, T, H, W, 3) on 0-255 -> (N, 32w + 32w/beta) motion features (eval mode)."""
  fast = normalize_clip(chunks)
  slow = fast[:, slow_indices(fast.shape[1], model.alpha)]
  slow_feat, fast_feat = model.apply(variables, slow, fast, train=False)
  return jnp.concatenate([slow_feat, fast_feat], axis=-1)
