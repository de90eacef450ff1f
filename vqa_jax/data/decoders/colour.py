"""YUV 4:2:0 to RGB as OpenCV's capture does it (FFmpeg's swscale), for NVDEC's native NV12 frames.

OpenCV converts each decoded frame with swscale: the BT.601 matrix unless told otherwise, studio
(limited, Y 16-235) or full range from the stream, chroma repeated over each 2x2 block, fixed-point
coefficients (`crv`, `cbu`, `cgu`, `cgv` in 1/65536) and results truncated. `Conversion` holds the
matrix and range, `conversion_for` picks them from the stream's H.273 metadata, and `nv12_to_rgb` /
`i420_to_rgb` convert with jnp (on the device that holds the frames). Measured against OpenCV's
capture of stored YUV frames: at most 2 levels apart (tests/test_nvdec_colour.py).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

# (Kr, Kb) of the luma definitions.
MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
# H.273 matrix_coefficients codes read as BT.709; every other code (unspecified 2 included) is
# BT.601, swscale's default.
_BT709_CODES = (1,)


@dataclasses.dataclass(frozen=True)
class Conversion:
  """A YUV -> RGB conversion: the `matrix` (a key of MATRICES) and whether the range is full."""

  matrix: str = "bt601"
  full_range: bool = False

  def coefficients(self) -> tuple[float, float, float, float, float]:
    """(cy, crv, cbu, cgu, cgv), swscale's 16.16 fixed-point values as floats."""
    kr, kb = MATRICES[self.matrix]
    kg = 1.0 - kr - kb
    chroma_scale = 1.0 if self.full_range else 255.0 / 224.0
    luma_scale = 1.0 if self.full_range else 255.0 / 219.0
    values = (luma_scale, 2 * (1 - kr) * chroma_scale, 2 * (1 - kb) * chroma_scale,
              2 * kb * (1 - kb) / kg * chroma_scale, 2 * kr * (1 - kr) / kg * chroma_scale)
    return tuple(round(v * 65536) / 65536 for v in values)


def conversion_for(matrix_coefficients: int, full_range: bool) -> Conversion:
  """The conversion of a stream with H.273 `matrix_coefficients` and `full_range` flag."""
  return Conversion("bt709" if matrix_coefficients in _BT709_CODES else "bt601", bool(full_range))


def _yuv_to_rgb(y: jax.Array, u: jax.Array, v: jax.Array, conversion: Conversion) -> jax.Array:
  """(..., H, W) luma and (..., H/2, W/2) chroma planes, uint8 -> (..., H, W, 3) uint8 RGB."""
  cy, crv, cbu, cgu, cgv = conversion.coefficients()
  upsample = lambda c: jnp.repeat(jnp.repeat(c, 2, axis=-2), 2, axis=-1)
  height, width = y.shape[-2:]
  u = upsample(u.astype(jnp.float32) - 128.0)[..., :height, :width]
  v = upsample(v.astype(jnp.float32) - 128.0)[..., :height, :width]
  luma = y.astype(jnp.float32)
  luma = luma if conversion.full_range else (luma - 16.0) * cy
  rgb = jnp.stack([luma + crv * v, luma - cgu * u - cgv * v, luma + cbu * u], axis=-1)
  return jnp.clip(jnp.floor(rgb), 0, 255).astype(jnp.uint8)


_yuv_to_rgb_jit = jax.jit(_yuv_to_rgb, static_argnums=3)


@jax.jit
def _split_nv12(nv12: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(..., 3H/2, W) NV12 -> Y (..., H, W), U and V (..., H/2, W/2)."""
  height = nv12.shape[-2] * 2 // 3
  chroma = nv12[..., height:, :]
  chroma = chroma.reshape(*chroma.shape[:-1], chroma.shape[-1] // 2, 2)
  return nv12[..., :height, :], chroma[..., 0], chroma[..., 1]


def nv12_to_rgb(nv12: jax.Array, conversion: Conversion) -> jax.Array:
  """NV12 frames (..., 3H/2, W) uint8 (Y plane, then interleaved U, V) -> (..., H, W, 3) RGB."""
  return _yuv_to_rgb_jit(*_split_nv12(nv12), conversion)


def i420_to_rgb(i420: np.ndarray | jax.Array, conversion: Conversion) -> jax.Array:
  """I420 frames (..., 3H/2, W) uint8 (Y, then the U plane, then the V plane) -> (..., H, W, 3)."""
  i420 = jnp.asarray(i420)
  height, width = i420.shape[-2] * 2 // 3, i420.shape[-1]
  chroma = i420[..., height:, :].reshape(*i420.shape[:-2], 2, height // 2, width // 2)
  return _yuv_to_rgb_jit(i420[..., :height, :], chroma[..., 0, :, :], chroma[..., 1, :, :],
                         conversion)
