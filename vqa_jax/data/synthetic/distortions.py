"""The distortions of the synthetic videos: (frames float32 (T, H, W, 3), strength, rng) -> frames.

Strength s in [0, 1]; s = 0 is a no-op, or nearly so for jpeg (quality 90) and banding (64 levels);
`render_video` applies them in `DISTORTION_ORDER`:
  overexposure   x * 2**(1.5 s) + 48 s, clipped (blown highlights)
  underexposure  x * 2**(-2.5 s) - 16 s, clipped (crushed shadows)
  blur           Gaussian, sigma = 3 s**0.75 px
  noise          Gaussian, temporally independent, luma sd 32 s plus per-channel sd 8 s
  banding        posterisation to round(2**(6 - 4.5 s)) levels per channel (64 -> 3)
  downscale      point-sampled down by 5**s, bilinear back up (aliasing + softness)
  jpeg           per-frame cv2.imencode/imdecode at quality round(90 * (3/90)**s) (90 -> 3)
  judder         frame k shows frame floor(floor(k / p) * p), hold period p = 1 + 5 s
"""

from typing import Callable

import cv2
import numpy as np

# Order in which distortions are applied: capture, optics, sensor, bit depth, scaling, coding,
# frame-rate conversion.
DISTORTION_ORDER = ("overexposure", "underexposure", "blur", "noise", "banding", "downscale",
                    "jpeg", "judder")


def _per_frame(frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
  """Applies an image function to every frame."""
  return np.stack([fn(f) for f in frames]).astype(np.float32)


def to_uint8(frames: np.ndarray) -> np.ndarray:
  """Rounds and clips to uint8."""
  return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def jpeg_quality(s: float) -> int:
  """JPEG quality of the jpeg distortion at strength s: 90 at s=0 down to 3 at s=1."""
  return int(round(90 * (3 / 90)**s))


def _overexposure(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Gain 2**(1.5 s) and offset +48 s, clipped: blown highlights."""
  del rng  # Deterministic.
  return np.clip(frames * 2**(1.5 * s) + 48.0 * s, 0, 255)


def _underexposure(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Gain 2**(-2.5 s) and offset -16 s, clipped: crushed shadows."""
  del rng  # Deterministic.
  return np.clip(frames * 2**(-2.5 * s) - 16.0 * s, 0, 255)


def _blur(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Gaussian blur with sigma 3 s**0.75 pixels."""
  del rng  # Deterministic.
  if s <= 0:
    return frames
  return _per_frame(frames, lambda f: cv2.GaussianBlur(f, (0, 0), 3.0 * s**0.75))


def _noise(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Temporally independent Gaussian noise: luma sd 32 s plus chroma sd 8 s."""
  shape = frames.shape
  luma = rng.standard_normal(shape[:-1] + (1,), dtype=np.float32)
  chroma = rng.standard_normal(shape, dtype=np.float32)
  return frames + 32.0 * s * luma + 8.0 * s * chroma


def _banding(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Posterisation to round(2**(6 - 4.5 s)) levels per channel."""
  del rng  # Deterministic.
  step = 255.0 / (round(2**(6 - 4.5 * s)) - 1)
  return np.round(np.clip(frames, 0, 255) / step) * step


def _downscale(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Point-sampled downscale by 5**s, bilinear upscale back (aliasing plus softness)."""
  del rng  # Deterministic.
  h, w = frames.shape[1:3]
  factor = 5.0**s
  small = (max(1, round(w / factor)), max(1, round(h / factor)))
  if small == (w, h):
    return frames
  return _per_frame(frames, lambda f: cv2.resize(
      cv2.resize(f, small, interpolation=cv2.INTER_NEAREST), (w, h),
      interpolation=cv2.INTER_LINEAR))


def _jpeg(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Per-frame JPEG re-encoding at `jpeg_quality(s)`."""
  del rng  # Deterministic.
  params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality(s)]
  return _per_frame(to_uint8(frames), lambda f: cv2.imdecode(
      cv2.imencode(".jpg", f, params)[1], cv2.IMREAD_COLOR))


def judder_indices(num_frames: int, s: float) -> np.ndarray:
  """Source frame of every output frame under judder of strength s (hold period 1 + 5 s)."""
  period = 1.0 + 5.0 * s
  return np.floor(np.floor(np.arange(num_frames) / period) * period).astype(int)


def _judder(frames: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
  """Dropped frames shown as repeats of the last kept one."""
  del rng  # Deterministic.
  return frames[judder_indices(len(frames), s)]


DISTORTIONS = {
    "overexposure": _overexposure,
    "underexposure": _underexposure,
    "blur": _blur,
    "noise": _noise,
    "banding": _banding,
    "downscale": _downscale,
    "jpeg": _jpeg,
    "judder": _judder,
}

