"""Domain A content: textured discs/boxes and windows of drifting patterns over a static background.

Content kinds "shapes" (textured sprites), "gratings" (windows of drifting sinusoidal gratings) and
"checkers" (windows of drifting checkerboards); each renderer maps (rng, h, w, num_frames) to
float32 (T, H, W, 3) BGR frames.
"""

import dataclasses
import math
from typing import Callable

import numpy as np

from vqa_jax.data.synthetic import textures


def _bounce(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Reflects positions into [lo, hi] (a point bouncing between walls)."""
  span = hi - lo
  q = np.mod(p - lo, 2 * span)
  return lo + np.where(q > span, 2 * span - q, q)


def _static_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """Two-colour gradient plus fractal shading plus fine texture."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  theta = rng.uniform(0, 2 * np.pi)
  ramp = (np.cos(theta) * xx / w + np.sin(theta) * yy / h)
  ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
  c0, c1 = textures.colour(rng), textures.colour(rng)
  base = c0 + (c1 - c0) * ramp[..., None]
  shading = 18.0 * textures.fractal_noise(rng, h, w, cell=max(h, w) / 3)
  detail = textures.detail(rng, h, w)
  return base + (shading + detail)[..., None]


# fill(t, shift, region): a sprite's (h', w', 3) appearance over the (rows, cols) slices `region`
# of frame t, its texture displaced by the integer (dy, dx) `shift`.
_Fill = Callable[[int, tuple[int, int], tuple[slice, slice]], np.ndarray]
# pattern(u, v): values in [0, 1] at rotated coordinates u, v.
_Pattern = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class _Sprite:
  """A moving disc or box with the appearance `fill`."""

  box: bool
  centre: np.ndarray  # (2,) y, x at frame 0
  velocity: np.ndarray  # (2,) pixels per frame
  radii: np.ndarray  # (2,) half-height, half-width
  fill: _Fill


def _sprite_alpha(sprite: _Sprite, t: int, h: int, w: int
                  ) -> tuple[np.ndarray, tuple[slice, slice], tuple[int, int]]:
  """Anti-aliased coverage (h', w', 1) of a sprite at frame t, its bounding region and shift."""
  cy = float(_bounce(sprite.centre[0] + sprite.velocity[0] * t, 0.0, h))
  cx = float(_bounce(sprite.centre[1] + sprite.velocity[1] * t, 0.0, w))
  ry, rx = sprite.radii
  y0, y1 = max(0, math.floor(cy - ry) - 1), min(h, math.ceil(cy + ry) + 2)
  x0, x1 = max(0, math.floor(cx - rx) - 1), min(w, math.ceil(cx + rx) + 2)
  yy, xx = np.ogrid[y0:y1, x0:x1]
  dy, dx = (yy - cy) / ry, (xx - cx) / rx
  if sprite.box:
    inside = np.minimum((1 - np.abs(dy)) * ry, (1 - np.abs(dx)) * rx)
  else:
    inside = (1 - np.sqrt(dy**2 + dx**2)) * min(ry, rx)
  alpha = np.clip(inside + 0.5, 0.0, 1.0)[..., None].astype(np.float32)
  shift = (round(cy - sprite.centre[0]), round(cx - sprite.centre[1]))
  return alpha, (slice(y0, y1), slice(x0, x1)), shift


def _random_sprite(rng: np.random.Generator, h: int, w: int, size: tuple[float, float],
                   fill: _Fill) -> _Sprite:
  """A sprite of random shape, place, size (fraction of min(h, w)) and velocity."""
  radius = rng.uniform(*size) * min(h, w)
  speed = rng.uniform(0.5, 2.5) * min(h, w) / 128
  angle = rng.uniform(0, 2 * np.pi)
  return _Sprite(box=bool(rng.random() < 0.5),
                 centre=rng.uniform([0, 0], [h, w]),
                 velocity=speed * np.array([np.sin(angle), np.cos(angle)]),
                 radii=radius * np.array([rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)]),
                 fill=fill)


def _composite(background: np.ndarray, sprites: list[_Sprite], num_frames: int) -> np.ndarray:
  """Renders sprites over a static background for every frame: (T, H, W, 3)."""
  h, w = background.shape[:2]
  frames = np.empty((num_frames, h, w, 3), np.float32)
  for t in range(num_frames):
    frame = background.copy()
    for sprite in sprites:
      alpha, region, shift = _sprite_alpha(sprite, t, h, w)
      frame[region] += alpha * (sprite.fill(t, shift, region) - frame[region])
    frames[t] = frame
  return frames


def _textured_fill(rng: np.random.Generator, h: int, w: int) -> _Fill:
  """A flat colour with fine texture that moves with its sprite."""
  colour = textures.colour(rng)
  texture = textures.detail(rng, h, w)[..., None]

  def fill(t: int, shift: tuple[int, int], region: tuple[slice, slice]) -> np.ndarray:
    del t  # Static texture.
    rows = np.arange(region[0].start, region[0].stop) - shift[0]
    cols = np.arange(region[1].start, region[1].stop) - shift[1]
    return colour + texture[np.ix_(rows % h, cols % w)]

  return fill


def _pattern_fill(rng: np.random.Generator, h: int, w: int, pattern: _Pattern) -> _Fill:
  """A two-colour `pattern(u, v)` in [0, 1] in rotated coordinates, drifting along u."""
  lo, hi = textures.colour(rng, 20, 110), textures.colour(rng, 140, 235)
  theta = rng.uniform(0, np.pi)
  drift = rng.uniform(0.3, 1.5) * rng.choice([-1.0, 1.0])
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  u = np.cos(theta) * xx + np.sin(theta) * yy
  v = -np.sin(theta) * xx + np.cos(theta) * yy
  return lambda t, shift, region: lo + (hi - lo) * pattern(u[region] + drift * t,
                                                           v[region])[..., None]


def _grating(rng: np.random.Generator) -> _Pattern:
  """A sinusoidal grating with a period of 4-12 px."""
  period = rng.uniform(4.0, 12.0)
  return lambda u, v: 0.5 + 0.5 * np.sin(2 * np.pi * u / period)


def _checker(rng: np.random.Generator) -> _Pattern:
  """An anti-aliased checkerboard with 3-10 px squares."""
  square = rng.uniform(3.0, 10.0)
  return lambda u, v: 0.5 + 0.5 * np.tanh(
      4 * np.sin(np.pi * u / square) * np.sin(np.pi * v / square))


def render_shapes(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """3-6 textured discs/boxes moving over a static background."""
  background = _static_background(rng, h, w)
  sprites = [_random_sprite(rng, h, w, (0.08, 0.25), _textured_fill(rng, h, w))
             for _ in range(rng.integers(3, 7))]
  return _composite(background, sprites, num_frames)


def _render_pattern_windows(rng: np.random.Generator, h: int, w: int, num_frames: int,
                            make_pattern: Callable[[np.random.Generator], _Pattern]) -> np.ndarray:
  """1-3 moving windows of a drifting pattern over a static background."""
  background = _static_background(rng, h, w)
  sprites = [_random_sprite(rng, h, w, (0.2, 0.4), _pattern_fill(rng, h, w, make_pattern(rng)))
             for _ in range(rng.integers(1, 4))]
  return _composite(background, sprites, num_frames)


def render_gratings(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """Moving windows of drifting sinusoidal gratings."""
  return _render_pattern_windows(rng, h, w, num_frames, _grating)


def render_checkers(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """Moving windows of drifting checkerboards."""
  return _render_pattern_windows(rng, h, w, num_frames, _checker)

