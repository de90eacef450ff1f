"""Numpy-only rules shared by the parity golden generator and tests/test_parity_golden.py.

The golden files hold what the official FAST-VQA code computed; this module says what it was
given: the model specs, the weight of every state_dict key (a pure function of the key name, its
shape and a seed, so a test can regenerate 28M weights instead of storing them) and the input clip.
Nothing here imports torch or jax: the generator runs it in a torch venv, the tests in the repo's.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

WEIGHT_SEED = 20250101
INPUT_SEED = 7


@dataclasses.dataclass(frozen=True)
class GoldenSpec:
  """One official model configuration and the input it is run on.

  Field names follow the official `SwinTransformer3D` / `VQAHead` constructors; `input_shape` is
  our (B, T, H, W, 3) uint8 layout (the official model gets (B, 3, T, H, W) float).
  """
  name: str
  embed_dim: int = 96
  depths: tuple[int, ...] = (2, 2, 6, 2)
  num_heads: tuple[int, ...] = (3, 6, 12, 24)
  window_size: tuple[int, int, int] = (8, 7, 7)
  frag_biases: tuple[bool, ...] = (True, True, True, False)
  head_hidden: int = 64
  input_shape: tuple[int, ...] = (1, 32, 224, 224, 3)
  store_weights: bool = False

  @property
  def head_in_channels(self) -> int:
    """Channels of the backbone output (the head's input)."""
    return self.embed_dim * 2 ** (len(self.depths) - 1)

  def torch_backbone_kwargs(self) -> dict:
    """Keyword arguments of the official `SwinTransformer3D` for this spec."""
    return dict(embed_dim=self.embed_dim, depths=list(self.depths),
                num_heads=list(self.num_heads), window_size=self.window_size,
                frag_biases=[bool(f) for f in self.frag_biases])

  def torch_head_kwargs(self) -> dict:
    """Keyword arguments of the official `VQAHead` for this spec."""
    return dict(in_channels=self.head_in_channels, hidden_channels=self.head_hidden)


SPECS = {
    # Small width, full architecture: window (8,7,7), shifted windows in all 4 stages (stage 4
    # shifts only in time), patch merging x3, fragment bias in stages 1-3 with the gate reaching
    # 2 / 4 / 6, several heads per stage, at the real 32x224x224 input. Weights stored (~1 MB).
    "small": GoldenSpec(name="small", embed_dim=12, depths=(2, 2, 2, 2),
                        num_heads=(2, 4, 8, 16), head_hidden=16, store_weights=True),
    # FAST-VQA-B / FasterVQA (upstream `swin_tiny_grpb`): the official defaults.
    "fast_vqa_b": GoldenSpec(name="fast_vqa_b"),
    # FAST-VQA-M (upstream `swin_tiny_grpb_m`): window (4,4,4), no fragment tables, 16x128x128
    # input (4x4 fragments of 32), so the official adaptive window is (2,2,2).
    "fast_vqa_m": GoldenSpec(name="fast_vqa_m", window_size=(4, 4, 4),
                             frag_biases=(False, False, False, False),
                             input_shape=(1, 16, 128, 128, 3)),
}


def key_seed(key: str, seed: int = WEIGHT_SEED) -> list[int]:
  """The numpy seed sequence of one state_dict key: [seed, crc32(key)]."""
  return [seed, zlib.crc32(key.encode("utf-8"))]


def parameter_value(key: str, shape: tuple[int, ...], seed: int = WEIGHT_SEED) -> np.ndarray:
  """The float32 weight of state_dict entry `key` (PyTorch layout), independent of key order.

  With z ~ N(0, 1) from `np.random.default_rng(key_seed(key, seed))`:
    *_bias_table          0.5 z           (position biases large enough to matter)
    *.weight, ndim >= 2   z / sqrt(fan_in), fan_in = prod(shape[1:])   (Linear, Conv3d)
    *.weight, ndim == 1   1 + 0.1 z       (LayerNorm gains)
    *.bias                0.1 z
  then rounded to float16 and back, so a stored copy in float16 is exact.
  """
  z = np.random.default_rng(key_seed(key, seed)).standard_normal(shape)
  if key.endswith("_bias_table"):
    value = 0.5 * z
  elif key.endswith(".weight") and len(shape) >= 2:
    value = z / np.sqrt(np.prod(shape[1:]))
  elif key.endswith(".weight"):
    value = 1.0 + 0.1 * z
  elif key.endswith(".bias"):
    value = 0.1 * z
  else:
    raise ValueError(f"no rule for state_dict key {key!r}")
  return value.astype(np.float16).astype(np.float32)


def input_clip(shape: tuple[int, ...], seed: int = INPUT_SEED) -> np.ndarray:
  """The uint8 (B, T, H, W, 3) input clip: uniform integers in [0, 255] from `seed`."""
  return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
