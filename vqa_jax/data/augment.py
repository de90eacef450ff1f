"""AutoAugment for whole clips ("-AuA", paper §2): one ImageNet sub-policy draw per clip.

The reference's `--aua` applies `torchvision.transforms.v2.AutoAugment(policy=IMAGENET)` to the
decoded (T, C, H, W) uint8 clip at native resolution, before fragment sampling, in training only.
torchvision draws the sub-policy, each op's application and each op's sign once per call, so the
whole clip gets the same ops with the same magnitudes. This module follows it (numpy + OpenCV):

* the full ImageNet policy of 25 sub-policies, each two (op, probability, magnitude bin) entries,
  magnitudes from 10 bins as torchvision's augmentation space; signed ops (Rotate, ShearX, Color,
  Contrast, Sharpness) are negated with probability 1/2;
* ops whose statistics depend on the image (Equalize, AutoContrast, Contrast's mean) use each
  frame's own statistics, as torchvision does on a batch of frames;
* geometric ops use nearest-neighbour sampling with fill 0, as torchvision's default.

Choice stated (paper §2): the reference keeps the quality-changing ops of the ImageNet policy
(Posterize, Solarize, Equalize, Sharpness, Contrast, ...) even though they alter the perceptual
quality the MOS describes; so does this port, to reproduce FAST-VQA-AuA. Rotate/ShearX differ
from torchvision only at nearest-neighbour ties; the random stream is numpy's, not torch's.
"""

import cv2
import numpy as np

from vqa_jax.config.choices import AUGMENT_POLICIES

NUM_BINS = 10

# torchvision AutoAugmentPolicy.IMAGENET: ((op, probability, magnitude bin or None), (...)).
IMAGENET_POLICY = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
    (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
    (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
    (("Color", 0.4, 0), ("Equalize", 0.6, None)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
)

# op -> (magnitude of each bin, signed), as torchvision's _AUGMENTATION_SPACE with 10 bins.
MAGNITUDES = {
    "ShearX": (np.linspace(0.0, 0.3, NUM_BINS), True),
    "Rotate": (np.linspace(0.0, 30.0, NUM_BINS), True),
    "Color": (np.linspace(0.0, 0.9, NUM_BINS), True),
    "Contrast": (np.linspace(0.0, 0.9, NUM_BINS), True),
    "Sharpness": (np.linspace(0.0, 0.9, NUM_BINS), True),
    "Posterize": (8 - np.round(np.arange(NUM_BINS) / ((NUM_BINS - 1) / 4)), False),
    "Solarize": (255.0 * np.linspace(1.0, 0.0, NUM_BINS), False),
}


def _blend(frames: np.ndarray, other: np.ndarray, ratio: float) -> np.ndarray:
  """ratio * frames + (1 - ratio) * other, clipped to [0, 255] and truncated to uint8."""
  mixed = ratio * frames.astype(np.float32) + (1.0 - ratio) * other
  return np.clip(mixed, 0, 255).astype(np.uint8)


def grayscale(frames: np.ndarray) -> np.ndarray:
  """floor(0.2989 R + 0.587 G + 0.114 B) as float32 (..., H, W, 1)."""
  rgb = frames.astype(np.float32)
  gray = 0.2989 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
  return np.floor(gray)[..., None]


def color(frames: np.ndarray, magnitude: float) -> np.ndarray:
  """Saturation factor 1 + magnitude: blend with the grayscale frame."""
  return _blend(frames, grayscale(frames), 1.0 + magnitude)


def contrast(frames: np.ndarray, magnitude: float) -> np.ndarray:
  """Contrast factor 1 + magnitude: blend with each frame's mean grayscale value."""
  mean = grayscale(frames).mean(axis=(-3, -2, -1), keepdims=True)
  return _blend(frames, mean, 1.0 + magnitude)


def sharpness(frames: np.ndarray, magnitude: float) -> np.ndarray:
  """Sharpness factor 1 + magnitude: blend with a 3x3 smoothing (borders kept), as torchvision."""
  kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
  smooth = frames.astype(np.float32)
  for t, frame in enumerate(frames):
    inner = cv2.filter2D(frame.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    smooth[t, 1:-1, 1:-1] = np.clip(np.round(inner), 0, 255)
  return _blend(frames, smooth, 1.0 + magnitude)


def posterize(frames: np.ndarray, bits: float) -> np.ndarray:
  """Keeps the `bits` most significant bits of every value."""
  mask = (0xFF << (8 - int(bits))) & 0xFF
  return frames & np.uint8(mask)


def solarize(frames: np.ndarray, threshold: float) -> np.ndarray:
  """Inverts the values >= threshold."""
  return np.where(frames >= threshold, 255 - frames, frames).astype(np.uint8)


def invert(frames: np.ndarray, _: float = 0.0) -> np.ndarray:
  """255 - value."""
  return 255 - frames


def autocontrast(frames: np.ndarray, _: float = 0.0) -> np.ndarray:
  """Per frame and channel, stretches [min, max] to [0, 255] (unchanged when min == max)."""
  low = frames.min(axis=(-3, -2), keepdims=True).astype(np.float32)
  high = frames.max(axis=(-3, -2), keepdims=True).astype(np.float32)
  flat = high == low
  scale = np.where(flat, 1.0, 255.0 / np.where(flat, 1.0, high - low))
  low = np.where(flat, 0.0, low)
  return np.clip((frames - low) * scale, 0, 255).astype(np.uint8)


def _equalize_channel(channel: np.ndarray) -> np.ndarray:
  """PIL's histogram equalization of one uint8 channel (torchvision's `_scale_channel`)."""
  hist = np.bincount(channel.reshape(-1), minlength=256)
  nonzero = hist[hist != 0]
  step = int(nonzero[:-1].sum()) // 255
  if step == 0:
    return channel
  lut = (np.cumsum(hist) + step // 2) // step
  lut = np.clip(np.concatenate([[0], lut[:-1]]), 0, 255).astype(np.uint8)
  return lut[channel]


def equalize(frames: np.ndarray, _: float = 0.0) -> np.ndarray:
  """Histogram equalization per frame and channel."""
  out = np.empty_like(frames)
  for t, c in np.ndindex(frames.shape[0], frames.shape[3]):
    out[t, :, :, c] = _equalize_channel(frames[t, :, :, c])
  return out


def _warp(frames: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """Applies the inverse affine map `matrix` (output -> input) to every frame, nearest, fill 0."""
  height, width = frames.shape[1:3]
  flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
  return np.stack([cv2.warpAffine(f, matrix, (width, height), flags=flags,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0) for f in frames])


def rotate(frames: np.ndarray, degrees: float) -> np.ndarray:
  """Rotates counter-clockwise by `degrees` about the frame centre, keeping the size."""
  height, width = frames.shape[1:3]
  forward = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
  return _warp(frames, cv2.invertAffineTransform(forward))


def shear_x(frames: np.ndarray, magnitude: float) -> np.ndarray:
  """Horizontal shear about the top-left corner: output (x, y) takes input (x + m y, y)."""
  return _warp(frames, np.array([[1.0, magnitude, 0.0], [0.0, 1.0, 0.0]]))


OPS = {"ShearX": shear_x, "Rotate": rotate, "Color": color, "Contrast": contrast,
       "Sharpness": sharpness, "Posterize": posterize, "Solarize": solarize,
       "AutoContrast": autocontrast, "Equalize": equalize, "Invert": invert}


def draw_ops(rng: np.random.Generator) -> list[tuple[str, float]]:
  """One AutoAugment draw: the (op, signed magnitude) pairs to apply, in order (maybe none)."""
  first, second = IMAGENET_POLICY[int(rng.integers(len(IMAGENET_POLICY)))]
  ops = []
  for name, probability, magnitude_bin in (first, second):
    if not rng.random() <= probability:
      continue
    magnitude = 0.0
    if magnitude_bin is not None:
      magnitudes, signed = MAGNITUDES[name]
      magnitude = float(magnitudes[magnitude_bin])
      if signed and rng.random() <= 0.5:
        magnitude = -magnitude
    ops.append((name, magnitude))
  return ops


def apply_ops(frames: np.ndarray, ops: list[tuple[str, float]]) -> np.ndarray:
  """Applies (op, magnitude) pairs in order to uint8 (T, H, W, 3) frames."""
  for name, magnitude in ops:
    frames = OPS[name](frames, magnitude)
  return frames


def augment_clip(frames: np.ndarray, rng: np.random.Generator, policy: str) -> np.ndarray:
  """The clip transformed by one draw of `policy` ('none' or 'autoaugment'), same on every frame."""
  if policy not in AUGMENT_POLICIES:
    raise ValueError(f"augment policy must be one of {AUGMENT_POLICIES}, got {policy!r}")
  if policy == "none":
    return frames
  if frames.dtype != np.uint8 or frames.ndim != 4:
    raise ValueError(f"augment_clip needs uint8 (T, H, W, C) frames, got {frames.dtype} "
                     f"{frames.shape}")
  return apply_ops(frames, draw_ops(rng))

