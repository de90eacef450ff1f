"""What the model sees of a video, for `python -m vqa_jax.show_fragments` (`vqa-jax inspect`):
its evaluation fragments (`config.sampling`, `num_clips_eval` clips, centred deterministic offsets,
before normalisation) as an array and as a contact sheet, one row per clip, one column per frame.
"""

from collections.abc import Mapping
import os
from typing import Any

import cv2
import numpy as np

from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data import video_io

GAP = 2  # Pixels of white between the tiles of the contact sheet.


def eval_fragments(path: str, sampling: Mapping[str, Any]) -> np.ndarray:
  """The evaluation fragments of one video: uint8 (num_clips_eval, T, S, S, 3)."""
  return clip_sampler.sample_clips(path, sampling, sampling["num_clips_eval"])


def contact_sheet(fragments: np.ndarray, gap: int = GAP) -> np.ndarray:
  """Tiles (clips, T, S, S, 3) fragments into one RGB image: rows = clips, columns = frames."""
  clips, frames, side = fragments.shape[:3]
  sheet = np.full((clips * (side + gap) - gap, frames * (side + gap) - gap, 3), 255, np.uint8)
  for clip, frame in np.ndindex(clips, frames):
    top, left = clip * (side + gap), frame * (side + gap)
    sheet[top:top + side, left:left + side] = fragments[clip, frame]
  return sheet


def write_inspection(path: str, sampling: Mapping[str, Any], out_dir: str) -> tuple[str, str]:
  """Writes DIR/fragments.npy and DIR/fragments.png for `path`; returns their paths."""
  fragments = eval_fragments(path, sampling)
  os.makedirs(out_dir, exist_ok=True)
  npy_path = os.path.join(out_dir, "fragments.npy")
  png_path = os.path.join(out_dir, "fragments.png")
  np.save(npy_path, fragments)
  if not cv2.imwrite(video_io.opencv_name(png_path),
                     contact_sheet(fragments)[..., ::-1]):  # RGB -> BGR for OpenCV.
    raise OSError(f"cannot write {png_path}")
  return npy_path, png_path
