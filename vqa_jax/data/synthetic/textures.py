"""Procedural textures of the synthetic videos: fractal noise, fine detail, random colours.

Images are float32 (H, W) or (H, W, 3) BGR on the 0-255 scale. All content carries fine texture
(1-4 px) whose amplitude varies smoothly, so each frame has detailed areas (where blur and
downscaling show) and nearly flat ones (where noise shows).
"""

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
  """Bicubically interpolated random grid with about `cell` pixels per node."""
  grid = rng.standard_normal((max(2, round(h / cell) + 2), max(2, round(w / cell) + 2)))
  return cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def fractal_noise(rng: np.random.Generator, h: int, w: int, cell: float,
                   octaves: int = 4) -> np.ndarray:
  """Sum of smooth-noise octaves (cell halves, amplitude halves), normalised to unit std."""
  total = sum(0.5**o * _smooth_noise(rng, h, w, max(1.0, cell / 2**o)) for o in range(octaves))
  return (total - total.mean()) / (total.std() + 1e-6)


def _fine_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """Band-pass (about 1-4 px) texture with unit std: what blur and downscaling remove."""
  white = rng.standard_normal((h, w)).astype(np.float32)
  band = cv2.GaussianBlur(white, (0, 0), 0.6) - cv2.GaussianBlur(white, (0, 0), 2.0)
  return band / (band.std() + 1e-6)


def detail(rng: np.random.Generator, h: int, w: int, scale: float = 1.0) -> np.ndarray:
  """Fine texture (about 16-24 grey levels times `scale`) whose amplitude varies smoothly.

  About a sixth of the area is nearly flat (where noise shows) and the rest is detailed (where
  blur and downscaling show).
  """
  amplitude = np.clip(0.7 + 0.6 * fractal_noise(rng, h, w, cell=max(h, w) / 2.5, octaves=2),
                      0.05, 1.5)
  return scale * float(rng.uniform(16.0, 24.0)) * amplitude * _fine_texture(rng, h, w)


def colour(rng: np.random.Generator, lo: float = 40.0, hi: float = 215.0) -> np.ndarray:
  """A random BGR colour."""
  return rng.uniform(lo, hi, 3).astype(np.float32)

