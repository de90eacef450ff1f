"""FAST-VQA fragments cut on the device from frames already there, equal to the numpy sampler.

The host decides everything random: the frame indices (`clip_sampler.clip_indices`) and the patch
corners (`fragments.patch_corners`), from the element's generator in the numpy sampler's order.
`cut_fragments` only copies pixels, so on the same frames it equals
`fragments.sample_fragments` bit for bit. It is jitted once per (frames, index) shape.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.data.sampling import fragments as fragments_lib


@functools.partial(jax.jit, static_argnames=("patch",))
def _cut(frames: jax.Array, frame_index: jax.Array, tops: jax.Array, lefts: jax.Array,
         patch: int) -> jax.Array:
  """(U, H, W, C) frames, (T,) index, (T, g, g) corners -> (T, g*patch, g*patch, C)."""
  num_frames, grid = tops.shape[0], tops.shape[1]
  channels = frames.shape[-1]
  index = jnp.broadcast_to(frame_index[:, None, None], tops.shape).reshape(-1)

  def one_patch(f, top, left):
    return jax.lax.dynamic_slice(frames, (f, top, left, 0), (1, patch, patch, channels))[0]

  patches = jax.vmap(one_patch)(index, tops.reshape(-1), lefts.reshape(-1))
  patches = patches.reshape(num_frames, grid, grid, patch, patch, channels)
  return patches.transpose(0, 1, 3, 2, 4, 5).reshape(num_frames, grid * patch, grid * patch,
                                                      channels)


def cut_fragments(frames: jax.Array, frame_index: np.ndarray, grid: int, patch: int, aligned: int,
                  rng: np.random.Generator | None = None) -> jax.Array:
  """Grid mini-patch sampling of device frames: `fragments.sample_fragments` without upsampling.

  `frames` (U, H, W, C) on the device with min(H, W) >= grid * patch (smaller videos are upsampled
  on the CPU: the caller falls back); output frame t is cut from frames[frame_index[t]]. The
  corners come from `fragments.patch_corners` with `rng` (random) or None (centred).
  """
  _, height, width, _ = frames.shape
  if min(height, width) < grid * patch:
    raise ValueError(f"frames of {height}x{width} are smaller than the {grid * patch}-pixel "
                     "fragment side: they are upsampled on the CPU")
  frame_index = np.asarray(frame_index, dtype=np.int64).reshape(-1)
  num_frames = frame_index.size
  tops, lefts = fragments_lib.patch_corners(height, width, num_frames, grid, patch, aligned, rng)
  chunk_of_frame = np.arange(num_frames) // aligned
  as_int32 = lambda a: jnp.asarray(a, dtype=jnp.int32)
  return _cut(frames, as_int32(frame_index), as_int32(tops[chunk_of_frame]),
              as_int32(lefts[chunk_of_frame]), patch)
