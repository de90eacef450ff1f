"""ResNet-50 trunk in the torchvision layout (ResNet v1.5), returning the four stage outputs.

torchvision's `resnet50` (weights `resnet50-19c8e357.pth`): a 7x7/2 stem convolution, BatchNorm,
ReLU and a 3x3/2 max-pool, then four stages of Bottleneck blocks (1x1 -> 3x3 -> 1x1, expansion 4)
whose *3x3* convolution carries the stride (v1.5), with a 1x1 convolution + BatchNorm shortcut on
the first block of each stage. The classifier (`fc`) is left out: SimpleVQA (paper §6.3) only
pools the stage outputs. Channels-last images (B, H, W, C).

The conv/BatchNorm helpers here (PyTorch padding, kaiming-normal fan-out init, BatchNorm with
PyTorch's eps 1e-5 and momentum 0.1, i.e. Flax momentum 0.9) are shared with `slowfast.py`.
One difference from PyTorch remains: Flax's running variance is updated with the biased batch
variance, PyTorch's with the unbiased one (a factor n/(n-1) on the update, n = B*H*W).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vqa_jax.config.sections import RESNET50_STAGE_SIZES

Dtype = Any

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Flax convention: 1 - PyTorch's momentum 0.1.
EXPANSION = 4

# torchvision initialises convolutions with kaiming_normal_(mode='fan_out', nonlinearity='relu').
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def torch_padding(kernel_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
  """PyTorch's symmetric `padding=k//2` for each kernel dimension."""
  return tuple((k // 2, k // 2) for k in kernel_size)


def conv(features: int, kernel_size: Sequence[int], strides: Sequence[int] | int = 1, *,
         dtype: Dtype, name: str) -> nn.Conv:
  """A bias-free convolution with PyTorch padding k//2 and the torchvision init (2-D or 3-D)."""
  kernel_size = tuple(kernel_size)
  if isinstance(strides, int):
    strides = (strides,) * len(kernel_size)
  return nn.Conv(features, kernel_size, strides=tuple(strides), padding=torch_padding(kernel_size),
                 use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                 kernel_init=conv_kernel_init, name=name)


def batch_norm(*, train: bool, dtype: Dtype, name: str) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults; batch statistics in training, running ones otherwise."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                      dtype=dtype, param_dtype=jnp.float32, name=name)


def max_pool_3x3_s2(x: jax.Array, spatial_dims: int = 2) -> jax.Array:
  """PyTorch MaxPool(kernel 3, stride 2, padding 1) over the last `spatial_dims` spatial axes."""
  lead = x.ndim - 2 - spatial_dims  # Leading non-pooled spatial axes (e.g. time).
  window = (1,) * lead + (3,) * spatial_dims
  strides = (1,) * lead + (2,) * spatial_dims
  padding = ((0, 0),) * lead + ((1, 1),) * spatial_dims
  return nn.max_pool(x, window, strides=strides, padding=padding)


class Bottleneck(nn.Module):
  """torchvision Bottleneck: conv1 1x1 -> conv2 3x3 (stride) -> conv3 1x1 (x4), plus shortcut."""
  width: int
  strides: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    """(B, H, W, C) -> (B, H/stride, W/stride, 4*width)."""
    out_channels = self.width * EXPANSION
    y = conv(self.width, (1, 1), dtype=self.dtype, name="conv1")(x)
    y = nn.relu(batch_norm(train=train, dtype=self.dtype, name="bn1")(y))
    y = conv(self.width, (3, 3), self.strides, dtype=self.dtype, name="conv2")(y)
    y = nn.relu(batch_norm(train=train, dtype=self.dtype, name="bn2")(y))
    y = conv(out_channels, (1, 1), dtype=self.dtype, name="conv3")(y)
    y = batch_norm(train=train, dtype=self.dtype, name="bn3")(y)
    if self.strides != 1 or x.shape[-1] != out_channels:
      x = conv(out_channels, (1, 1), self.strides, dtype=self.dtype, name="downsample_conv")(x)
      x = batch_norm(train=train, dtype=self.dtype, name="downsample_bn")(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet trunk (no classifier): images (B, H, W, 3) -> (layer1, layer2, layer3, layer4).

  `width` is the stem width (64 for ResNet-50); stage i has inner width `width * 2**i` and
  `4 * width * 2**i` output channels, so ResNet-50's stages give 256, 512, 1024, 2048 channels at
  strides 4, 8, 16, 32. Blocks are named `layer{stage}_{block}` (torchvision `layer{stage}.{block}`).
  """
  stage_sizes: Sequence[int] = RESNET50_STAGE_SIZES
  width: int = 64
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images, *, train: bool) -> tuple[jax.Array, ...]:
    """Normalised images (B, H, W, 3) -> the stage outputs, one (B, H', W', C) per stage."""
    x = conv(self.width, (7, 7), 2, dtype=self.dtype, name="conv1")(images.astype(self.dtype))
    x = nn.relu(batch_norm(train=train, dtype=self.dtype, name="bn1")(x))
    x = max_pool_3x3_s2(x)
    stages = []
    for stage, num_blocks in enumerate(self.stage_sizes):
      for block in range(num_blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = Bottleneck(self.width * 2**stage, strides, dtype=self.dtype,
                       name=f"layer{stage + 1}_{block}")(x, train=train)
      stages.append(x)
    return tuple(stages)


def resnet50(dtype: Dtype = jnp.float32) -> ResNet:
  """torchvision's ResNet-50 trunk (23,508,032 parameters without `fc`)."""
  return ResNet(RESNET50_STAGE_SIZES, 64, dtype=dtype)
