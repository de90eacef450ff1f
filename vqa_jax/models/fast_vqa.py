"""FAST-VQA model (Video Swin-T with GRPB + VQA head) and its factory.

`model.backbone` picks the backbone under the VQA head: 'video_swin' (default; FAST-VQA-B,
FasterVQA, FAST-VQA-M, and with temporal patch 1 and window (1, w, w) the 2D Swin-T of the IQA
configs) or 'swin_v2' (`models/swin_v2.py`, SAMA's IQA backbone: per-frame Swin-V2 with square
window `window_size[-1]` and patch `patch_size[-1]`; no fragment bias, no remat).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vqa_jax.config.sections import fast_vqa_b_config  # pylint: disable=unused-import  (the default)
from vqa_jax.models.heads import VQAHead
from vqa_jax.models.swin_v2 import SwinTransformerV2
from vqa_jax.models.video_swin import ATTENTION_IMPLEMENTATIONS
from vqa_jax.models.video_swin import SwinTransformer3D
from vqa_jax.models.video_swin import checkpoint_policy

VIDEO_MEAN = (123.675, 116.28, 103.53)
VIDEO_STD = (58.395, 57.12, 57.375)

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def normalize_video(x):
  """RGB on the 0-255 scale (..., 3), uint8 or float -> float32 (x-mean)/std."""
  x = jnp.asarray(x).astype(jnp.float32)
  mean = jnp.asarray(VIDEO_MEAN, jnp.float32)
  std = jnp.asarray(VIDEO_STD, jnp.float32)
  return (x - mean) / std


def video_score(quality_map):
  """(B, ...) local quality map -> (B,) mean over all positions."""
  return jnp.mean(quality_map, axis=tuple(range(1, quality_map.ndim)))


class VQAModel(nn.Module):
  """Raw video (B, T, H, W, 3) on 0-255 -> quality map (B, T', H', W')."""
  backbone: nn.Module
  head: nn.Module

  def __call__(self, video, *, train: bool):
    """Normalizes, runs backbone and head; returns float32 (B, T', H', W')."""
    feats = self.backbone(normalize_video(video), train=train)
    return self.head(feats, train=train)[..., 0].astype(jnp.float32)


def _optional_triple(value):
  """None or a 3-tuple of ints."""
  return None if value is None else tuple(int(v) for v in value)


def build_model(model_cfg: ml_collections.ConfigDict) -> VQAModel:
  """Builds a `VQAModel` from a model config (see `fast_vqa_b_config`).

  `base_x_size` (e.g. (32, 224, 224)) turns on the reference's adaptive
  window rescaling; it is a no-op for inputs of exactly that size.
  """
  if model_cfg.dtype not in _DTYPES:
    raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, "
                     f"got {model_cfg.dtype!r}")
  dtype = _DTYPES[model_cfg.dtype]
  checkpoint_policy(model_cfg.remat_policy or "")  # Fails early.
  # Not a config field by default: an optional switch (bench/mfu_check.py).
  attention = str(model_cfg.get("attention", "auto"))
  if attention not in ATTENTION_IMPLEMENTATIONS:
    raise ValueError(f"model.attention must be one of {ATTENTION_IMPLEMENTATIONS}, "
                     f"got {attention!r}")
  num_stages = len(model_cfg.depths)
  if not (len(model_cfg.num_heads) == len(model_cfg.frag_biases) == num_stages):
    raise ValueError("depths, num_heads and frag_biases need one entry per "
                     "stage")
  head = VQAHead(hidden_channels=int(model_cfg.head_hidden),
                 dropout_rate=float(model_cfg.head_dropout), dtype=dtype)
  kind = model_cfg.backbone
  if kind == "swin_v2":
    return VQAModel(backbone=_swin_v2(model_cfg, dtype), head=head)
  if kind != "video_swin":
    raise ValueError(f"model.backbone must be one of {BACKBONES}, got {kind!r}")
  backbone = SwinTransformer3D(
      patch_size=tuple(model_cfg.patch_size),
      embed_dim=int(model_cfg.embed_dim),
      depths=tuple(int(d) for d in model_cfg.depths),
      num_heads=tuple(int(h) for h in model_cfg.num_heads),
      window_size=tuple(model_cfg.window_size),
      mlp_ratio=float(model_cfg.mlp_ratio),
      drop_path_rate=float(model_cfg.drop_path_rate),
      frag_biases=tuple(bool(f) for f in model_cfg.frag_biases),
      fragments_grid=(None if model_cfg.fragments_grid is None
                      else int(model_cfg.fragments_grid)),
      base_x_size=_optional_triple(model_cfg.base_x_size),
      remat=bool(model_cfg.remat),
      remat_policy=str(model_cfg.remat_policy or ""),
      attention=attention, dtype=dtype)
  return VQAModel(backbone=backbone, head=head)


BACKBONES = ("video_swin", "swin_v2")


def _swin_v2(model_cfg: ml_collections.ConfigDict, dtype) -> SwinTransformerV2:
  """The per-frame Swin-V2 of `model_cfg`; rejects the Video Swin-only switches it would ignore."""
  patch, window = tuple(model_cfg.patch_size), tuple(model_cfg.window_size)
  if patch[0] != 1 or patch[1] != patch[2] or window[0] != 1 or window[1] != window[2]:
    raise ValueError(f"model.backbone='swin_v2' works frame by frame with square patches and "
                     f"windows: needs patch_size (1, p, p) and window_size (1, w, w), got "
                     f"{patch} and {window}")
  unsupported = [name for name, on in (("frag_biases", any(model_cfg.frag_biases)),
                                       ("remat", model_cfg.remat),
                                       ("base_x_size", model_cfg.base_x_size))
                 if on]
  if unsupported:
    raise ValueError(f"model.backbone='swin_v2' does not support {unsupported}")
  return SwinTransformerV2(patch_size=patch[1], embed_dim=int(model_cfg.embed_dim),
                           depths=tuple(int(d) for d in model_cfg.depths),
                           num_heads=tuple(int(h) for h in model_cfg.num_heads),
                           window=window[1], mlp_ratio=float(model_cfg.mlp_ratio),
                           drop_path_rate=float(model_cfg.drop_path_rate), dtype=dtype)
