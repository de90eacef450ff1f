"""Procedural VQA dataset of real encoded videos: the default, download-free training data.

Every video is procedural content with 0-2 controlled distortions whose strengths set its MOS, so
quality is visible in small native-resolution patches ("fragments") and the training job runs
anywhere without a download.

Domains and splits:
  * Domain A ("train" and in-domain "test"): objects moving over static textured backgrounds:
    "shapes" (textured discs/boxes), "gratings" (windows of drifting sinusoidal gratings),
    "checkers" (windows of drifting checkerboards).
  * Domain B ("cross", the cross-dataset test): camera motion over procedural scenes:
    "landscape_pan", "landscape_zoom" (sky gradient, fractal ridges, textured ground) and
    "noise_field" (marbled fractal noise, panned and zoomed).
  Both domains share blur, noise, jpeg, downscale and exposure at different proportions (see
  `DOMAINS`); "judder" is rare in A and common in B, and "banding" occurs only in B.

All content carries fine texture (1-4 px) whose amplitude varies smoothly, so each frame has
detailed areas (where blur and downscaling show) and nearly flat ones (where noise shows).

Distortions (strength s in [0, 1]; s = 0 is a no-op, or nearly so for jpeg (quality 90) and
banding (64 levels); applied in `DISTORTION_ORDER`):
  overexposure   x * 2**(1.5 s) + 48 s, clipped (blown highlights)
  underexposure  x * 2**(-2.5 s) - 16 s, clipped (crushed shadows)
  blur           Gaussian, sigma = 3 s**0.75 px
  noise          Gaussian, temporally independent, luma sd 32 s plus per-channel sd 8 s
  banding        posterisation to round(2**(6 - 4.5 s)) levels per channel (64 -> 3)
  downscale      point-sampled down by 5**s, bilinear back up (aliasing + softness)
  jpeg           per-frame cv2.imencode/imdecode at quality round(90 * (3/90)**s) (90 -> 3)
  judder         frame k shows frame floor(floor(k / p) * p), hold period p = 1 + 5 s
Per video: 0 distortions (pristine) with probability 0.1, 1 with 0.6, 2 with 0.3
(`NUM_DISTORTIONS_PROBS`), drawn by the domain's frequencies, strengths uniform in [0, 1]; pairs
in `INCOMPATIBLE` (over+under exposure; noise with blur or downscale, which it would mask) are
never drawn together.

MOS (1-5, like KoNViD-1k): `mos_from_strengths` = 1 + 4 * prod_k (1 - w_k s_k) with the weights
`DISTORTION_WEIGHTS` (0.5-0.85, so MOS > 1 + 4 * 0.15**2), then Gaussian label noise (sd
`SyntheticSpec.label_noise` = 0.08), clipped to [1, 5] and rounded to 4 decimals.

Codec: Motion-JPEG in .avi written by OpenCV's built-in writer (`cv2.CAP_OPENCV_MJPEG`) with
`VIDEOWRITER_PROP_QUALITY` = `SyntheticSpec.codec_quality` (95), set after opening (as an open
parameter it is rejected by the FFmpeg writer and ignored by the built-in one). Round trip of
pristine 128x160x32 clips (3 of each content kind), luma PSNR mean (min) and size:
  built-in MJPG q95  43.0 (42.3) dB, ~400 KB   <- chosen
  FFmpeg mp4v        37.2 (35.8) dB,  ~58 KB   (no working quality control: neither the open
                                               parameter nor OPENCV_FFMPEG_WRITER_OPTIONS acts)
  FFmpeg MJPG        37.7 (36.7) dB, ~220 KB
  FFV1               lossless,       ~760 KB
For scale, noise at s = 0.1 alone is ~38 dB, so mp4v's artefacts would rival the weakest
distortions. Colour PSNR (~35 dB) is bounded by 4:2:0 chroma subsampling, as in real video.
Files decode with any cv2.VideoCapture (FFmpeg backend), exact in frame size and count. The demo
dataset (480 + 128 + 96 videos of 64x80, 32 frames) is ~71 MB and generates in ~5 s on 2 cores.

Caching: `ensure_dataset` keys the dataset by a hash of the spec and `FORMAT_VERSION`, generates
into a temporary folder, writes the completion marker last and renames the folder into place, so
an interrupted run never leaves a dataset that looks complete. Generation is deterministic per
seed (each video has its own seed sequence), whatever the number of worker processes.

A `MANIFEST.json` (every file's size and BLAKE2b digest) is checked whenever the cache is used: a
file damaged after generation is named in a warning and the dataset regenerated.

CLI: python -m vqa_jax.data.synthetic [--out CACHE_DIR] [--preset demo|tiny] [--seed N] [--force]
(CACHE_DIR as the trainer's data.cache_dir / $VQA_JAX_CACHE, the default; the dataset goes in
CACHE_DIR/synthetic/, where the trainer looks for it.)
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterable, Mapping

from absl import logging
import cv2
import numpy as np

from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.runtime import progress
from vqa_jax.data import labels as labels_lib
from vqa_jax.data import video_io

# Bump when the generator's output changes, so that cached datasets are regenerated.
FORMAT_VERSION = 2

SPLITS = ("train", "test", "cross")
SPLIT_DOMAIN = {"train": "A", "test": "A", "cross": "B"}
VIDEO_EXT = ".avi"
MARKER_FILE = "COMPLETE"
MANIFEST_FILE = "MANIFEST.json"
CACHE_SUBDIR = "synthetic"  # under the cache folder ($VQA_JAX_CACHE): where the trainer looks
METADATA_FILE = "metadata.jsonl"
SPEC_FILE = "spec.json"

DISTORTION_WEIGHTS = {
    "overexposure": 0.75,
    "underexposure": 0.75,
    "blur": 0.85,
    "noise": 0.85,
    "banding": 0.7,
    "downscale": 0.8,
    "jpeg": 0.85,
    "judder": 0.5,
}
# Order in which distortions are applied: capture, optics, sensor, bit depth, scaling, coding,
# frame-rate conversion.
DISTORTION_ORDER = ("overexposure", "underexposure", "blur", "noise", "banding", "downscale",
                    "jpeg", "judder")
# Pairs that never occur in one video: opposite exposures, and noise with the softening
# distortions (added noise restores the fine detail that blur and downscaling remove, masking them).
INCOMPATIBLE = (frozenset(("overexposure", "underexposure")), frozenset(("noise", "blur")),
                frozenset(("noise", "downscale")))
# Probabilities of 0, 1 and 2 distortions per video (0 = pristine).
NUM_DISTORTIONS_PROBS = (0.1, 0.6, 0.3)


@dataclasses.dataclass(frozen=True)
class DomainSpec:
  """Content kinds (drawn uniformly) and relative distortion frequencies of one domain."""

  contents: tuple[str, ...]
  distortion_probs: Mapping[str, float]


DOMAINS = {
    "A": DomainSpec(
        contents=("shapes", "gratings", "checkers"),
        distortion_probs={"blur": 0.22, "noise": 0.22, "jpeg": 0.22, "downscale": 0.14,
                          "overexposure": 0.08, "underexposure": 0.08, "judder": 0.04}),
    "B": DomainSpec(
        contents=("landscape_pan", "landscape_zoom", "noise_field"),
        distortion_probs={"blur": 0.12, "noise": 0.12, "jpeg": 0.18, "downscale": 0.18,
                          "overexposure": 0.05, "underexposure": 0.10, "judder": 0.13,
                          "banding": 0.12}),
}


def spec_digest(spec: SyntheticSpec) -> str:
  """Hex hash of the spec and FORMAT_VERSION: the dataset's cache key."""
  text = json.dumps({"format": FORMAT_VERSION, **dataclasses.asdict(spec)}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
  """A generated dataset: root folder, label file per split and the metadata file."""

  root: str
  label_files: dict[str, str]
  metadata_file: str


# ---------------------------------------------------------------------------------------------
# MOS.


def mos_from_strengths(strengths: Mapping[str, float]) -> float:
  """Noise-free MOS 1 + 4 * prod_k (1 - DISTORTION_WEIGHTS[k] * s_k) for strengths s_k in [0, 1]."""
  quality = 1.0
  for name, s in strengths.items():
    if name not in DISTORTION_WEIGHTS:
      raise ValueError(f"Unknown distortion {name!r}; known: {sorted(DISTORTION_WEIGHTS)}")
    if not 0.0 <= s <= 1.0:
      raise ValueError(f"Strength of {name!r} must be in [0, 1], got {s}")
    quality *= 1.0 - DISTORTION_WEIGHTS[name] * s
  return 1.0 + 4.0 * quality


# ---------------------------------------------------------------------------------------------
# Procedural building blocks. Images are float32 (H, W) or (H, W, 3) BGR on the 0-255 scale.


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
  """Bicubically interpolated random grid with about `cell` pixels per node."""
  grid = rng.standard_normal((max(2, round(h / cell) + 2), max(2, round(w / cell) + 2)))
  return cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _fractal_noise(rng: np.random.Generator, h: int, w: int, cell: float,
                   octaves: int = 4) -> np.ndarray:
  """Sum of smooth-noise octaves (cell halves, amplitude halves), normalised to unit std."""
  total = sum(0.5**o * _smooth_noise(rng, h, w, max(1.0, cell / 2**o)) for o in range(octaves))
  return (total - total.mean()) / (total.std() + 1e-6)


def _fine_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """Band-pass (about 1-4 px) texture with unit std: what blur and downscaling remove."""
  white = rng.standard_normal((h, w)).astype(np.float32)
  band = cv2.GaussianBlur(white, (0, 0), 0.6) - cv2.GaussianBlur(white, (0, 0), 2.0)
  return band / (band.std() + 1e-6)


def _detail(rng: np.random.Generator, h: int, w: int, scale: float = 1.0) -> np.ndarray:
  """Fine texture (about 16-24 grey levels times `scale`) whose amplitude varies smoothly.

  About a sixth of the area is nearly flat (where noise shows) and the rest is detailed (where
  blur and downscaling show).
  """
  amplitude = np.clip(0.7 + 0.6 * _fractal_noise(rng, h, w, cell=max(h, w) / 2.5, octaves=2),
                      0.05, 1.5)
  return scale * float(rng.uniform(16.0, 24.0)) * amplitude * _fine_texture(rng, h, w)


def _colour(rng: np.random.Generator, lo: float = 40.0, hi: float = 215.0) -> np.ndarray:
  """A random BGR colour."""
  return rng.uniform(lo, hi, 3).astype(np.float32)


def _bounce(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Reflects positions into [lo, hi] (a point bouncing between walls)."""
  span = hi - lo
  q = np.mod(p - lo, 2 * span)
  return lo + np.where(q > span, 2 * span - q, q)


# ---------------------------------------------------------------------------------------------
# Domain A: objects moving over a static textured background.


def _static_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """Two-colour gradient plus fractal shading plus fine texture."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  theta = rng.uniform(0, 2 * np.pi)
  ramp = (np.cos(theta) * xx / w + np.sin(theta) * yy / h)
  ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
  c0, c1 = _colour(rng), _colour(rng)
  base = c0 + (c1 - c0) * ramp[..., None]
  shading = 18.0 * _fractal_noise(rng, h, w, cell=max(h, w) / 3)
  detail = _detail(rng, h, w)
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
  colour = _colour(rng)
  texture = _detail(rng, h, w)[..., None]

  def fill(t: int, shift: tuple[int, int], region: tuple[slice, slice]) -> np.ndarray:
    del t  # Static texture.
    rows = np.arange(region[0].start, region[0].stop) - shift[0]
    cols = np.arange(region[1].start, region[1].stop) - shift[1]
    return colour + texture[np.ix_(rows % h, cols % w)]

  return fill


def _pattern_fill(rng: np.random.Generator, h: int, w: int, pattern: _Pattern) -> _Fill:
  """A two-colour `pattern(u, v)` in [0, 1] in rotated coordinates, drifting along u."""
  lo, hi = _colour(rng, 20, 110), _colour(rng, 140, 235)
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


def _render_shapes(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
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


def _render_gratings(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """Moving windows of drifting sinusoidal gratings."""
  return _render_pattern_windows(rng, h, w, num_frames, _grating)


def _render_checkers(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """Moving windows of drifting checkerboards."""
  return _render_pattern_windows(rng, h, w, num_frames, _checker)


# ---------------------------------------------------------------------------------------------
# Domain B: a camera panning or zooming over a large procedural canvas.


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
  top, horizon = _colour(rng, 120, 230), _colour(rng, 150, 250)
  clouds = 20.0 * np.clip(_fractal_noise(rng, ch, cw, cell=ch / 2), 0, None)[..., None]
  canvas = top + (horizon - top) * yy + clouds
  rows = np.arange(ch, dtype=np.float32)[:, None]
  for layer, level in enumerate(np.sort(rng.uniform(0.3, 0.75, 3))):
    ridge = ch * (level + 0.12 * _fractal_noise(rng, 1, cw, cell=cw / 6)[0])
    cover = np.clip(rows - ridge + 0.5, 0.0, 1.0)[..., None]
    detail = _detail(rng, ch, cw, scale=0.4 + 0.4 * layer)
    ground = (_colour(rng, 30, 200) * (1.0 - 0.15 * layer)
              + (detail + 14.0 * _fractal_noise(rng, ch, cw, cell=12))[..., None])
    canvas += cover * (ground - canvas)
  return canvas


def _noise_field_canvas(rng: np.random.Generator, ch: int, cw: int) -> np.ndarray:
  """Marbled three-colour fractal noise with fine texture."""
  turbulence = _fractal_noise(rng, ch, cw, cell=40)
  xx = np.arange(cw, dtype=np.float32)[None, :]
  veins = 0.5 + 0.5 * np.sin(2 * np.pi * xx / rng.uniform(15, 40) + 4.0 * turbulence)
  mix = 0.5 + 0.25 * _fractal_noise(rng, ch, cw, cell=30)
  c0, c1, c2 = _colour(rng), _colour(rng), _colour(rng)
  base = c0 + (c1 - c0) * veins[..., None] + (c2 - c0) * 0.5 * mix[..., None]
  return base + _detail(rng, ch, cw)[..., None]


def _pan_path(rng: np.random.Generator, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
  """Integer top/left offsets of a pan: 1-3 px/frame sideways, up to 1 px every 2 frames up/down."""
  t = np.arange(num_frames)
  vx = int(rng.integers(1, 4)) * int(rng.choice([-1, 1]))
  vy = int(rng.integers(-1, 2))
  lefts = vx * t - min(0, vx * (num_frames - 1))
  tops = (vy * t) // 2 - min(0, (vy * (num_frames - 1)) // 2)
  return tops, lefts


def _render_landscape_pan(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
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


def _render_landscape_zoom(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """A camera zooming in or out of a landscape."""
  tops, lefts, zooms, ch, cw = _zoom_path(rng, h, w, num_frames)
  return _camera_frames(_landscape_canvas(rng, ch, cw), h, w, tops, lefts, zooms)


def _render_noise_field(rng: np.random.Generator, h: int, w: int, num_frames: int) -> np.ndarray:
  """A marbled noise field, zoomed (half the videos) or panned."""
  if rng.random() < 0.5:
    tops, lefts, zooms, ch, cw = _zoom_path(rng, h, w, num_frames)
  else:
    tops, lefts = _pan_path(rng, num_frames)
    zooms, ch, cw = np.ones(num_frames), h + int(tops.max()), w + int(lefts.max())
  return _camera_frames(_noise_field_canvas(rng, ch, cw), h, w, tops, lefts, zooms)


CONTENT_RENDERERS = {
    "shapes": _render_shapes,
    "gratings": _render_gratings,
    "checkers": _render_checkers,
    "landscape_pan": _render_landscape_pan,
    "landscape_zoom": _render_landscape_zoom,
    "noise_field": _render_noise_field,
}


# ---------------------------------------------------------------------------------------------
# Distortions: (frames float32 (T, H, W, 3), strength, rng) -> frames.


def _per_frame(frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
  """Applies an image function to every frame."""
  return np.stack([fn(f) for f in frames]).astype(np.float32)


def _to_uint8(frames: np.ndarray) -> np.ndarray:
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
  return _per_frame(_to_uint8(frames), lambda f: cv2.imdecode(
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


# ---------------------------------------------------------------------------------------------
# Videos.


def render_video(content: str, distortions: Mapping[str, float], *, height: int, width: int,
                 num_frames: int, seed: int) -> np.ndarray:
  """Renders `content` (fixed by `seed`) with the given distortions: uint8 (T, H, W, 3) BGR."""
  if content not in CONTENT_RENDERERS:
    raise ValueError(f"Unknown content {content!r}; known: {sorted(CONTENT_RENDERERS)}")
  mos_from_strengths(distortions)  # Validates names and strengths.
  frames = CONTENT_RENDERERS[content](np.random.default_rng([seed, 1]), height, width, num_frames)
  noise_rng = np.random.default_rng([seed, 2])
  for name in DISTORTION_ORDER:
    if name in distortions:
      frames = DISTORTIONS[name](frames, float(distortions[name]), noise_rng)
  return _to_uint8(frames)


def write_video(path: str, frames: np.ndarray, fps: float, quality: int = 95) -> None:
  """Writes uint8 (T, H, W, 3) BGR frames as Motion-JPEG .avi at the given JPEG quality."""
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(video_io.opencv_name(path), cv2.CAP_OPENCV_MJPEG,
                           cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
  try:
    if not writer.isOpened():
      raise OSError(f"cv2.VideoWriter could not open {path}")
    if not writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality):
      raise OSError(f"cv2.VideoWriter ignored quality {quality} for {path}")
    for frame in frames:
      writer.write(np.ascontiguousarray(frame))
  finally:
    writer.release()


# ---------------------------------------------------------------------------------------------
# Dataset sampling and generation.


def video_seed(seed: int, split: str, index: int) -> int:
  """The seed of video `index` of `split` in a dataset with seed `seed`."""
  return int(np.random.SeedSequence([seed, SPLITS.index(split), index]).generate_state(1)[0])


def sample_distortions(domain: str, rng: np.random.Generator) -> dict[str, float]:
  """Draws 0-2 compatible distortions of `domain` with strengths uniform in [0, 1]."""
  probs = dict(DOMAINS[domain].distortion_probs)
  count = rng.choice(len(NUM_DISTORTIONS_PROBS), p=NUM_DISTORTIONS_PROBS)
  chosen = {}
  for _ in range(count):
    names = sorted(probs)
    p = np.array([probs[n] for n in names])
    name = names[rng.choice(len(names), p=p / p.sum())]
    chosen[name] = round(float(rng.uniform(0.0, 1.0)), 4)
    for pair in INCOMPATIBLE:
      if name in pair:
        for other in pair:
          probs.pop(other, None)
    probs.pop(name, None)
  return chosen


def sample_video(spec: SyntheticSpec, split: str, index: int) -> dict[str, Any]:
  """Metadata of one video: relpath, split, domain, content, seed, distortions, MOS."""
  seed = video_seed(spec.seed, split, index)
  rng = np.random.default_rng([seed, 0])
  domain = SPLIT_DOMAIN[split]
  contents = DOMAINS[domain].contents
  content = contents[rng.integers(len(contents))]
  distortions = sample_distortions(domain, rng)
  mos = mos_from_strengths(distortions) + spec.label_noise * rng.standard_normal()
  return {
      "relpath": f"videos/{domain}/{split}_{index:05d}{VIDEO_EXT}",
      "split": split,
      "domain": domain,
      "content": content,
      "seed": seed,
      "distortions": distortions,
      "mos": round(float(np.clip(mos, 1.0, 5.0)), 4),
  }


def sample_metadata(spec: SyntheticSpec) -> list[dict[str, Any]]:
  """Metadata of every video of the spec, split by split."""
  return [sample_video(spec, split, i) for split in SPLITS for i in range(spec.num_videos(split))]


def _write_one(job: tuple[str, dict[str, Any], SyntheticSpec]) -> None:
  """Renders and writes one video (runs in a worker process)."""
  root, meta, spec = job
  frames = render_video(meta["content"], meta["distortions"], height=spec.height,
                        width=spec.width, num_frames=spec.num_frames, seed=meta["seed"])
  write_video(os.path.join(root, meta["relpath"]), frames, spec.fps, spec.codec_quality)


def _init_worker() -> None:
  """Keeps each worker process on one OpenCV thread."""
  cv2.setNumThreads(1)


def _run_jobs(jobs: list[tuple[str, dict[str, Any], SyntheticSpec]], num_workers: int) -> None:
  """Runs `_write_one` over jobs, in a spawned process pool when num_workers > 1."""
  with progress.tqdm_bar(len(jobs), "video", desc="generating", leave=False) as bar:
    if num_workers <= 1 or len(jobs) <= 1:
      for job in jobs:
        _write_one(job)
        bar.update()
      return
    context = multiprocessing.get_context("spawn")  # Safe even if the caller has started JAX.
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                                initializer=_init_worker) as pool:
      for _ in pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (8 * num_workers))):
        bar.update()


def _dataset_at(root: str) -> SyntheticDataset:
  """The SyntheticDataset paths under `root`."""
  return SyntheticDataset(
      root=root,
      label_files={split: os.path.join(root, "labels", f"{split}.txt") for split in SPLITS},
      metadata_file=os.path.join(root, METADATA_FILE))


# Below this many frame pixels (about 2 s of work) generation runs in-process: spawning workers,
# which re-import the caller's main module, would cost more than it saves.
_MIN_PIXELS_FOR_POOL = 2e7


def _default_workers(spec: SyntheticSpec) -> int:
  """Worker processes for generation: 1 for small specs, else the CPU count (at most 8)."""
  pixels = sum(spec.num_videos(s) for s in SPLITS) * spec.num_frames * spec.height * spec.width
  return 1 if pixels < _MIN_PIXELS_FOR_POOL else max(1, min(8, os.cpu_count() or 1))


def generate(root: str, spec: SyntheticSpec, num_workers: int | None = None) -> SyntheticDataset:
  """Generates the dataset of `spec` into `root`, replacing an earlier one there."""
  dataset = _dataset_at(root)
  for stale in (MARKER_FILE, "videos", "labels"):
    path = os.path.join(root, stale)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)
  metadata = sample_metadata(spec)
  for domain in DOMAINS:
    os.makedirs(os.path.join(root, "videos", domain), exist_ok=True)
  os.makedirs(os.path.join(root, "labels"), exist_ok=True)
  _run_jobs([(root, meta, spec) for meta in metadata],
            _default_workers(spec) if num_workers is None else num_workers)
  for split, label_file in dataset.label_files.items():
    labels_lib.write_labels(label_file, [(m["relpath"], spec.duration, spec.fps, m["mos"])
                                         for m in metadata if m["split"] == split])
  with open(dataset.metadata_file, "w", encoding="utf-8") as f:
    f.writelines(json.dumps(m, sort_keys=True) + "\n" for m in metadata)
  with open(os.path.join(root, SPEC_FILE), "w", encoding="utf-8") as f:
    json.dump({"format": FORMAT_VERSION, **dataclasses.asdict(spec)}, f, indent=2, sort_keys=True)
  with open(os.path.join(root, MARKER_FILE), "w", encoding="utf-8") as f:
    f.write(spec_digest(spec) + "\n")
  return dataset


def cache_root(cache_dir: str, prefix: str, digest: str) -> str:
  """The folder under `cache_dir` for generated data named `prefix` with content hash `digest`."""
  return os.path.join(cache_dir, f"{prefix}_{digest[:16]}")


def is_marked_complete(root: str, digest: str) -> bool:
  """Whether `root` holds the completion marker of the generation with hash `digest`."""
  try:
    with open(os.path.join(root, MARKER_FILE), encoding="utf-8") as f:
      return f.read().strip() == digest
  except OSError:
    return False


def _file_digest(path: str) -> str:
  """BLAKE2b hex digest of a file's bytes."""
  h = hashlib.blake2b(digest_size=16)
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def _data_files(root: str) -> list[str]:
  """Relative paths of the files under `root` that the manifest covers (all but itself)."""
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root)
                for f in files if f != MANIFEST_FILE)


def write_manifest(root: str) -> None:
  """Writes `MANIFEST_FILE`: {relative path: [size, BLAKE2b digest]} of every file under `root`."""
  manifest = {rel: [os.path.getsize(os.path.join(root, rel)), _file_digest(os.path.join(root, rel))]
              for rel in _data_files(root)}
  with open(os.path.join(root, MANIFEST_FILE), "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=0, sort_keys=True)


def manifest_problems(root: str) -> list[str]:
  """The files under `root` that differ from its manifest ('PATH: reason'); [] when intact."""
  try:
    with open(os.path.join(root, MANIFEST_FILE), encoding="utf-8") as f:
      manifest = json.load(f)
  except (OSError, ValueError):
    return [f"{os.path.join(root, MANIFEST_FILE)}: missing or unreadable"]
  problems = []
  for rel, (size, digest) in manifest.items():
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
      problems.append(f"{path}: missing")
    elif os.path.getsize(path) != size:
      problems.append(f"{path}: {os.path.getsize(path)} bytes, {size} when generated")
    elif _file_digest(path) != digest:
      problems.append(f"{path}: content changed since it was generated")
  return problems


def is_intact(root: str, digest: str) -> bool:
  """Whether `root` is marked complete for `digest` and every file matches its manifest.

  A damaged copy is logged, naming (up to 5 of) its damaged files.
  """
  if not is_marked_complete(root, digest):
    return False
  problems = manifest_problems(root)
  if problems:
    logging.warning("cached data %s is damaged, regenerating it: %s%s", root,
                    "; ".join(problems[:5]), f" (and {len(problems) - 5} more)"
                    if len(problems) > 5 else "")
  return not problems


def cached_build(cache_dir: str, prefix: str, digest: str,
                 build: Callable[[str], object]) -> str:
  """The cache folder of (`prefix`, `digest`), first filled by `build(tmp)` if missing or damaged.

  `build` writes everything, `MARKER_FILE` holding `digest` last, into a temporary folder; a
  manifest of every file's size and digest is added and the folder renamed into place, so a crash
  never leaves a folder that looks complete, concurrent generators settle on one copy, and a file
  damaged later (truncated, overwritten) is found by `is_intact` and the copy regenerated.
  """
  root = cache_root(cache_dir, prefix, digest)
  if is_intact(root, digest):
    return root
  os.makedirs(cache_dir, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.tmp", dir=cache_dir)
  try:
    build(tmp)
    write_manifest(tmp)
    if os.path.isdir(root):  # A leftover without a valid marker, or damaged: replace it.
      if is_intact(root, digest):  # Another process finished first.
        return root
      shutil.rmtree(root)
    try:
      os.rename(tmp, root)
    except OSError:
      if not is_intact(root, digest):  # Not a concurrent generator winning the race.
        raise
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return root


def dataset_root(cache_dir: str, spec: SyntheticSpec) -> str:
  """The folder under `cache_dir` that holds the dataset of `spec`."""
  return cache_root(cache_dir, "synthetic", spec_digest(spec))


def is_complete(root: str, spec: SyntheticSpec) -> bool:
  """Whether `root` holds a fully generated dataset of `spec`."""
  return is_marked_complete(root, spec_digest(spec))


def ensure_dataset(cache_dir: str, spec: SyntheticSpec,
                   num_workers: int | None = None) -> SyntheticDataset:
  """Returns the cached dataset of `spec` under `cache_dir`, generating it first if missing."""
  return _dataset_at(cached_build(cache_dir, "synthetic", spec_digest(spec),
                                  lambda tmp: generate(tmp, spec, num_workers)))


def ensure_in_cache(cache_dir: str, spec: SyntheticSpec,
                    num_workers: int | None = None) -> SyntheticDataset:
  """`ensure_dataset` in `<cache_dir>/synthetic`, where the trainer (data.cache_dir or
  $VQA_JAX_CACHE) and the CLI's --out look."""
  return ensure_dataset(os.path.join(cache_dir, CACHE_SUBDIR), spec, num_workers)


def split_statistics(dataset: SyntheticDataset) -> dict[str, dict[str, float]]:
  """MOS count/min/max/mean/std per split, read back from the label files."""
  stats = {}
  for split, label_file in dataset.label_files.items():
    mos = np.array([e.mos for e in labels_lib.read_labels(label_file, dataset.root)])
    stats[split] = {"count": len(mos), "min": float(mos.min()), "max": float(mos.max()),
                    "mean": float(mos.mean()), "std": float(mos.std())}
  return stats


def _folder_megabytes(paths: Iterable[str]) -> float:
  """Total size in MB of the given files."""
  return sum(os.path.getsize(p) for p in paths) / 2**20


def _define_flags() -> None:
  """Defines the command-line flags of `main`."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string("out", None, "Cache folder as the trainer's data.cache_dir / $VQA_JAX_CACHE "
                      "(default: that of the trainer); the dataset goes in "
                      "OUT/synthetic/synthetic_<spec hash>, where the trainer looks.")
  flags.DEFINE_enum("preset", "demo", ["demo", "tiny"], "Dataset size preset.")
  flags.DEFINE_integer("seed", None, "Overrides the preset's seed.")
  flags.DEFINE_integer("workers", None, "Worker processes (default: 1 for small specs, else "
                       "the CPU count, at most 8).")
  flags.DEFINE_bool("force", False, "Regenerate even if a complete copy exists.")


def main(argv: list[str]) -> None:
  """CLI: generates (or reuses) a preset dataset and prints its label files and timing."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  del argv
  opts = flags.FLAGS
  spec = {"demo": SyntheticSpec.demo, "tiny": SyntheticSpec.tiny}[opts.preset]()
  if opts.seed is not None:
    spec = dataclasses.replace(spec, seed=opts.seed)
  from vqa_jax.data import sources  # pylint: disable=g-import-not-at-top  (imports this module)
  out = opts.out or sources.default_cache_dir()
  root = dataset_root(os.path.join(out, CACHE_SUBDIR), spec)
  reused = is_complete(root, spec) and not opts.force
  start = time.perf_counter()
  if opts.force and os.path.isdir(root):
    shutil.rmtree(root)
  dataset = ensure_in_cache(out, spec, opts.workers)
  seconds = time.perf_counter() - start
  print(f"root: {dataset.root}")
  for split, label_file in dataset.label_files.items():
    print(f"{split}: {label_file}")
  print(f"metadata: {dataset.metadata_file}")
  videos = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(dataset.root, "videos"))
            for f in files]
  print(f"{'reused' if reused else 'generated'} {len(videos)} videos "
        f"({_folder_megabytes(videos):.1f} MB) in {seconds:.1f} s")
  for split, s in split_statistics(dataset).items():
    print(f"{split}: n={s['count']} MOS min {s['min']:.3f} max {s['max']:.3f} "
          f"mean {s['mean']:.3f} std {s['std']:.3f}")


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top

  _define_flags()
  app.run(main)
