"""SAMA's IQA sampler (stype 'sama', upstream `get_spatial_fragments_swm`) for one image.

Upstream (Sissuire/SAMA @ 38c02bf, `IQA/demo_train_iqa_baseline.py`, the default of
`IQA/options/fast-sama-iqa.yml`): with side = grid * patch and ratio = min(H, W) / side (after
upsampling the image to (round(H / ratio), round(W / ratio)) when ratio < 1), grid x grid
mini-patches are cut at two scales, native (1) and 1 / ratio (short side = side), with one cell
fraction u per cell shared by both scales (u ~ U[0, 1) in training, 0.5 at test), and a
checkerboard of patch x patch windows takes the native patches where (i + j) is even and the
scaled ones elsewhere.

This equals frame 2 of `sama.sample_fragments` on the image repeated as a 4-frame clip with the
'window' mask: its frame pairs get the scales linspace(1, 1 / ratio, 2) = (1, 1 / ratio), and the
mask replaces every even window with the clip's native-resolution patches.
"""

import numpy as np

from vqa_jax.data.sampling import sama

_CLIP_LEN = 4  # Two frame pairs: scale 1, then scale 1 / ratio.
_SCALED_FRAME = 2  # The first frame of the second pair.


def sample_fragments(image: np.ndarray, grid: int, patch: int,
                     rng: np.random.Generator | None = None) -> np.ndarray:
  """SAMA-IQA fragments of an (H, W, C) image: (grid * patch, grid * patch, C), same dtype."""
  if image.ndim != 3:
    raise ValueError(f"image must be (H, W, C), got shape {image.shape}")
  clip = sama.sample_fragments(image[None], np.zeros(_CLIP_LEN, np.int64), grid, patch,
                               _CLIP_LEN, rng, mask="window")
  return clip[_SCALED_FRAME]
