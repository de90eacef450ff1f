"""Domain B content: a camera panning or zooming over a large procedural canvas.

Content kinds "landscape_pan", "landscape_zoom" (sky gradient, fractal ridges, textured ground)
and "noise_field" (marbled fractal noise, panned or zoomed); each renderer maps
(rng, h, w, num_frames) to float32 (T, H, W, 3) BGR frames.
"""

import math

import cv2
import numpy as np

from vqa_jax.data.synthetic import textures


def _camera_frames(canvas: np.ndarray, h: int, w: int, tops: np.ndarray, lefts: np.ndarray,
                   zooms: np.ndarray) -> np.ndarray:
  """Crops (h*z, w*z) windows at integer (top, left) and area-resizes them to (h, w)."""
  frames = np.empty((len(tops), h, w, 3), np.float32)
  for t, (top, left, zoom) in enumerate(zip(tops, lefts, zooms)):
    ch, cw = round(h * zoom), round(w * zoom)
    crop = canvas[top:top + ch, left:left + cw]
    frames[t] = crop if (ch, cw) == (h, w) else cv2.resize(crop, (w, h),
                                                           interpolation=cv2.INTER_AREA)
  return frames


def _landscape_canvas(rng: np.random.Generator, ch: int, cw: int) -> np.ndarray:
  """Sky gradient with soft clouds, 3 fractal ridges, textured ground (near layers sharper)."""
  yy = np.arange(ch, dtype=np.float32)[:, None, None] / ch
  top, horizon = textures.colour(rng, 120, 230), textures.colour(rng, 150, 250)
  clouds = 20.0 * np.clip(textures.fractal_noise(rng, ch, cw, cell=ch / 2), 0, None)[..., None]
  canvas = top + (horizon - top) * yy + clouds
  rows = np.arange(ch, dtype=np.float32)[:, None]
  for layer, level in enumerate(np.sort(rng.uniform(0.3, 0.75, 3))):
    ridge = ch * (level + 0.12 * textures.fractal_noise(rng, 1, cw, cell=cw / 6)[0])
    cover = np.clip(rows - ridge + 0.5, 0.0, 1.0)[..., None]
    detail = textures.detail(rng, ch, cw, scale=0.4 + 0.4 * layer)
    ground = (textures.colour(rng, 30, 200) * (1.0 - 0.15 * layer)
              + (detail + 14.0 * textures.fractal_noise(rng, ch, cw, cell=12))[..., None])
    canvas += cover * (ground - canvas)
  return canvas


def _noise_field_canvas(rng: np.random.Generator, ch: int, cw: int) -> np.ndarray:
  """Marbled three-colour fractal noise with fine texture."""
  turbulence = textures.fractal_noise(rng, ch, cw, cell=40)
  xx = np.arange(cw, dtype=np.float32)[None, :]
  veins = 0.5 + 0.5 * np.sin(2 * np.pi * xx / rng.uniform(15, 40) + 4.0 * turbulence)
  mix = 0.5 + 0.25 * textures.fractal_noise(rng, ch, cw, cell=30)
  c0, c1, c2 = textures.colour(rng), textures.colour(rng), textures.colour(rng)
  base = c0 + (c1 - c0) * veins[..., None] + (c2 - c0) * 0.5 * mix[..., None]
  return base + textures.detail(rng, ch, cw)[..., None]


def _pan_path(rng: np.random.Generator, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
  """Integer top/left offsets of a pan: 1-3 px/frame sideways, up to 1 px every 2 frames up/down."""
  t = np.arange(num_frames)
  vx = int(rng.integers(1, 4)) * int(rng.choice([-1, 1]))
  vy = int(rng.integers(-1, 2))
  lefts = vx * t - min(0, vx * (num_frames - 1))
  tops = (vy * t) // 2 - min(0, (vy * (num_frames - 1)) // 2)
  return tops, lefts


def render_landscape_pan(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """A sideways camera pan over a landscape."""
  tops, lefts = _pan_path(rng, num_frames)
  canvas = _landscape_canvas(rng, h + int(tops.max()), w + int(lefts.max()))
  return _camera_frames(canvas, h, w, tops, lefts, np.ones(num_frames))


def _zoom_path(rng: np.random.Generator, h: int, w: int, num_frames: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
  """Zoom factors (1 to 1.3-1.6, in or out) with centred integer crops; also the canvas size."""
  z_max = rng.uniform(1.3, 1.6)
  zooms = np.linspace(z_max, 1.0, num_frames)
  if rng.random() < 0.5:
    zooms = zooms[::-1]
  ch, cw = math.ceil(h * z_max) + 1, math.ceil(w * z_max) + 1
  tops = np.array([(ch - round(h * z)) // 2 for z in zooms])
  lefts = np.array([(cw - round(w * z)) // 2 for z in zooms])
  return tops, lefts, zooms, ch, cw


def render_landscape_zoom(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """A camera zooming in or out of a landscape."""
  tops, lefts, zooms, ch, cw = _zoom_path(rng, h, w, num_frames)
  return _camera_frames(_landscape_canvas(rng, ch, cw), h, w, tops, lefts, zooms)


def noise_field_zooms(rng: np.random.Generator) -> bool:
  """The noise field's first draw: zoomed (True, half the videos) or panned."""
  return rng.random() < 0.5


def render_noise_field(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """A marbled noise field, zoomed (half the videos) or panned."""
  if noise_field_zooms(rng):
    tops, lefts, zooms, ch, cw = _zoom_path(rng, h, w, num_frames)
  else:
    tops, lefts = _pan_path(rng, num_frames)
    zooms, ch, cw = np.ones(num_frames), h + int(tops.max()), w + int(lefts.max())
  return _camera_frames(_noise_field_canvas(rng, ch, cw), h, w, tops, lefts, zooms)

