"""FAST-VQA regression head producing a local quality map."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from vqa_jax.models.video_swin import uniform_fan_in_init

Dtype = Any


class VQAHead(nn.Module):
  """Dropout -> 1x1x1 Conv(in->hidden) -> GELU -> Dropout -> 1x1x1 Conv(->1).

  Channels-last: (B, T, H, W, C) -> (B, T, H, W, 1). Both convolutions use the
  PyTorch default Conv3d init, U(+-1/sqrt(fan_in)) for weight and bias.
  """
  hidden_channels: int = 64
  dropout_rate: float = 0.5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    """Returns the local quality map (B, T, H, W, 1) in float32."""
    in_channels = x.shape[-1]
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    x = nn.Conv(
        self.hidden_channels, kernel_size=(1, 1, 1), dtype=self.dtype,
        param_dtype=jnp.float32, kernel_init=uniform_fan_in_init(in_channels),
        bias_init=uniform_fan_in_init(in_channels), name="fc_hid")(x)
    x = nn.gelu(x, approximate=False)
    x = nn.Dropout(self.dropout_rate)(x, deterministic=not train)
    x = nn.Conv(
        1, kernel_size=(1, 1, 1), dtype=self.dtype, param_dtype=jnp.float32,
        kernel_init=uniform_fan_in_init(self.hidden_channels),
        bias_init=uniform_fan_in_init(self.hidden_channels), name="fc_last")(x)
    return x.astype(jnp.float32)
