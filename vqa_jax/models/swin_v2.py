"""Swin Transformer V2 (image backbone of SAMA's IQA model), frame by frame on (B, T, H, W, C).

Follows microsoft/Swin-Transformer `swin_transformer_v2.py` (as vendored in Sissuire/SAMA
`IQA/fastvqa/models/swin_v2.py`, `SwinTransformerV2(img_size=256, window_size=8,
drop_path_rate=0.2)`), in the channels-last layout and parameter naming of `video_swin.py` so that
it plugs into `VQAModel` and the perturbation mask (weights `kernel`/`scale`, biases `bias`):

  * scaled cosine attention: cos(q, k) * exp(min(logit_scale, log 100)), logit_scale initialised to
    log 10 per head (`logit_scale`, shape (heads, 1, 1));
  * continuous relative position bias: a 2-layer MLP (`cpb_mlp_0`: 2 -> 512 with bias, ReLU,
    `cpb_mlp_2`: 512 -> heads, no bias) on the log-spaced relative coordinates
    sign(x) log2(1 + 8|x| / (w - 1)) / log2(8) per axis, then 16 sigmoid(.);
  * qkv without bias on k: `q_bias` and `v_bias` (zeros), k's bias fixed at 0;
  * residual post-norm: x + DropPath(LN(attn(x))), x + DropPath(LN(mlp(x))), both norms
    initialised to zero (`_init_respostnorm`);
  * PatchMerging reduces first, then normalises 2C (V1: normalises 4C, then reduces).

Each frame is one image: windows are (1, w, w), so frames never interact; the IQA input is a
1-frame clip. Shifted windows, their -100 mask and window shrinking (a feature map no larger than
the window uses the whole map and no shift) are `video_swin`'s. Pretrained-window rescaling of the
coordinates (`pretrained_window_sizes`) is not ported: the coordinates are normalised by the
window in use, which is upstream's behaviour for `pretrained_window_sizes = [0, 0, 0, 0]` (the
default, and SAMA's).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.models import video_swin

Dtype = Any
MAX_LOGIT_SCALE = float(np.log(1.0 / 0.01))
CPB_HIDDEN = 512
CPB_RANGE = 8.0  # relative coordinates are scaled to [-8, 8] before the log


def relative_coords_table(window: Sequence[int]) -> np.ndarray:
  """((2Wh-1)(2Ww-1), 2) float32 log-spaced relative coordinates, rows in index order."""
  axes = []
  for size in window:
    coords = np.arange(-(size - 1), size, dtype=np.float32)
    axes.append(coords / max(size - 1, 1) * CPB_RANGE)
  table = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
  return (np.sign(table) * np.log2(np.abs(table) + 1.0) / np.log2(CPB_RANGE)).astype(np.float32)


def _layer_norm(name: str, zero_init: bool = False) -> nn.LayerNorm:
  """A float32 LayerNorm with PyTorch's epsilon (scale and bias zero with `zero_init`)."""
  init = nn.initializers.zeros if zero_init else nn.initializers.ones
  return nn.LayerNorm(epsilon=video_swin.LAYER_NORM_EPS, dtype=jnp.float32,
                      param_dtype=jnp.float32, scale_init=init, name=name)


def _dense(features: int, dtype: Dtype, name: str, use_bias: bool = True) -> nn.Dense:
  """A Dense layer with trunc_normal(0.02) kernel and zero bias."""
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32,
                  kernel_init=video_swin.trunc_normal_init(0.02),
                  bias_init=nn.initializers.zeros, name=name)


class WindowAttentionV2(nn.Module):
  """Scaled cosine window attention with the continuous (MLP) relative position bias."""
  dim: int
  num_heads: int
  attn_drop_rate: float = 0.0
  proj_drop_rate: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, window: Sequence[int], mask=None, train: bool = False):
    """x: (B*nW, N, C) tokens of (Wh, Ww) windows; mask (nW, N, N) or None."""
    b_, n, c = x.shape
    heads = self.num_heads
    logit_scale = self.param("logit_scale", lambda k, s: jnp.full(s, np.log(10.0), jnp.float32),
                             (heads, 1, 1))
    q_bias = self.param("q_bias", nn.initializers.zeros, (c,), jnp.float32)
    v_bias = self.param("v_bias", nn.initializers.zeros, (c,), jnp.float32)
    qkv = _dense(3 * c, self.dtype, "qkv", use_bias=False)(x)
    qkv = qkv + jnp.concatenate([q_bias, jnp.zeros_like(v_bias), v_bias]).astype(qkv.dtype)
    qkv = qkv.reshape(b_, n, 3, heads, c // heads).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]

    def unit(t):  # F.normalize(t, dim=-1), eps 1e-12.
      t = t.astype(jnp.float32)
      return t / jnp.maximum(jnp.linalg.norm(t, axis=-1, keepdims=True), 1e-12)

    attn = jnp.einsum("bhqd,bhkd->bhqk", unit(q), unit(k))
    attn = attn * jnp.exp(jnp.minimum(logit_scale, MAX_LOGIT_SCALE))

    coords = jnp.asarray(relative_coords_table(window))
    hidden = nn.relu(_dense(CPB_HIDDEN, jnp.float32, "cpb_mlp_0")(coords))
    table = _dense(heads, jnp.float32, "cpb_mlp_2", use_bias=False)(hidden)
    index = video_swin.relative_position_index((1, *window))
    bias = 16.0 * jax.nn.sigmoid(table[index.reshape(-1)].reshape(n, n, heads).transpose(2, 0, 1))
    attn = attn + bias[None]
    if mask is not None:
      num_windows = mask.shape[0]
      attn = attn.reshape(b_ // num_windows, num_windows, heads, n, n)
      attn = attn + jnp.asarray(mask, jnp.float32)[None, :, None]
      attn = attn.reshape(b_, heads, n, n)
    attn = jax.nn.softmax(attn, axis=-1)
    attn = nn.Dropout(self.attn_drop_rate)(attn, deterministic=not train)
    out = jnp.einsum("bhqk,bhkd->bqhd", attn.astype(v.dtype), v).reshape(b_, n, c)
    out = _dense(c, self.dtype, "proj")(out)
    return nn.Dropout(self.proj_drop_rate)(out, deterministic=not train)


class _BlockOptions(nn.Module):
  """What the backbone passes down to every stage and block: window, MLP width, dropout, dtype."""
  window: int = 8
  mlp_ratio: float = 4.0
  drop_rate: float = 0.0
  attn_drop_rate: float = 0.0
  dtype: Dtype = jnp.float32

  def _block_options(self) -> dict:
    """These fields as keyword arguments, to build a stage or block with the same options."""
    return {f: getattr(self, f) for f in ("window", "mlp_ratio", "drop_rate", "attn_drop_rate",
                                          "dtype")}


class SwinBlockV2(_BlockOptions, kw_only=True):
  """Residual post-norm (shifted-)window attention block and MLP, per frame."""
  dim: int
  num_heads: int
  shifted: bool = False
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool):
    """(B, T, H, W, C) -> (B, T, H, W, C)."""
    b, d, h, w, _ = x.shape
    shift = self.window // 2 if self.shifted else 0
    window, shifts = video_swin.get_window_size((1, h, w), (1, self.window, self.window),
                                                (0, shift, shift))
    pads = [(win - size % win) % win for size, win in zip((h, w), window[1:])]
    y = jnp.pad(x, ((0, 0), (0, 0), (0, pads[0]), (0, pads[1]), (0, 0))) if any(pads) else x
    padded = (1, h + pads[0], w + pads[1])
    mask = None
    if any(shifts):
      y = jnp.roll(y, (-shifts[1], -shifts[2]), axis=(2, 3))
      mask = jnp.asarray(video_swin.compute_attention_mask(padded, window, shifts))
    y = y.reshape(b * d, 1, *padded[1:], self.dim)  # frames as batch entries
    windows = WindowAttentionV2(self.dim, self.num_heads, self.attn_drop_rate, self.drop_rate,
                                self.dtype, name="attn")(
                                    video_swin.window_partition(y, window), window[1:], mask, train)
    y = video_swin.window_reverse(windows, window, b * d, *padded).reshape(b, d, *padded[1:], -1)
    if any(shifts):
      y = jnp.roll(y, (shifts[1], shifts[2]), axis=(2, 3))
    y = y[:, :, :h, :w]
    x = x + video_swin.DropPath(self.drop_path)(_layer_norm("norm1", zero_init=True)(y), train)
    y = video_swin.Mlp(int(self.dim * self.mlp_ratio), self.dim, self.drop_rate, self.dtype,
                       name="mlp")(x, train)
    return x + video_swin.DropPath(self.drop_path)(_layer_norm("norm2", zero_init=True)(y), train)


class PatchMergingV2(nn.Module):
  """2x2 spatial merge: concat [x00, x10, x01, x11] -> Dense(2C, no bias) -> LN(2C)."""
  dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    """(B, T, H, W, C) -> (B, T, ceil(H/2), ceil(W/2), 2C)."""
    x = _dense(2 * self.dim, self.dtype, "reduction", use_bias=False)(video_swin.merge_2x2(x))
    return _layer_norm("norm")(x)


class StageV2(_BlockOptions, kw_only=True):
  """`depth` V2 blocks alternating unshifted / shifted windows, then an optional merge."""
  dim: int
  depth: int
  num_heads: int
  drop_path: Sequence[float] = ()
  downsample: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    """(B, T, H, W, C) -> the stage output (merged when `downsample`)."""
    for j in range(self.depth):
      x = SwinBlockV2(dim=self.dim, num_heads=self.num_heads, shifted=j % 2 == 1,
                      drop_path=self.drop_path[j] if self.drop_path else 0.0,
                      **self._block_options(), name=f"blocks_{j}")(x, train)
    if self.downsample:
      x = PatchMergingV2(self.dim, self.dtype, name="downsample")(x)
    return x


class SwinTransformerV2(_BlockOptions, kw_only=True):
  """Swin-V2 backbone: patch embed (1, p, p), stages of V2 blocks, final LayerNorm."""
  patch_size: int = 4
  embed_dim: int = 96
  depths: Sequence[int] = (2, 2, 6, 2)
  num_heads: Sequence[int] = (3, 6, 12, 24)
  drop_path_rate: float = 0.2

  @nn.compact
  def __call__(self, x, *, train: bool):
    """Normalised frames (B, T, H, W, 3) -> features (B, T, H', W', C), frames independent."""
    x = video_swin.PatchEmbed3D((1, self.patch_size, self.patch_size), self.embed_dim, self.dtype,
                                name="patch_embed")(x.astype(self.dtype))
    x = nn.Dropout(self.drop_rate)(x, deterministic=not train)
    rates = video_swin.drop_path_rates(self.drop_path_rate, self.depths)
    for i, depth in enumerate(self.depths):
      start = sum(self.depths[:i])
      x = StageV2(dim=self.embed_dim * 2 ** i, depth=depth, num_heads=self.num_heads[i],
                  drop_path=tuple(rates[start:start + depth]), downsample=i < len(self.depths) - 1,
                  **self._block_options(), name=f"layers_{i}")(x, train)
    return _layer_norm("norm")(x)
