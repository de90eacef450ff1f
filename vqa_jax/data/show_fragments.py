"""Shows what the model sees: `python -m vqa_jax.data.show_fragments VIDEO --config=CFG --out=DIR`.

Samples VIDEO exactly as evaluation does (`config.sampling`, `num_clips_eval` clips, centred
deterministic offsets, before normalisation) and writes

* DIR/fragments.npy: uint8 (clips, T, S, S, 3) with S = grid * patch;
* DIR/fragments.png: a contact sheet, one row per clip and one column per frame.
"""

from collections.abc import Mapping
import os
import sys
from typing import Any

from absl import app
from absl import flags
import cv2
from ml_collections import config_flags
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


def define_flags() -> tuple[flags.FlagHolder, flags.FlagHolder]:
  """Defines --config and --out (only when run as a program: the module stays importable)."""
  config = config_flags.DEFINE_config_file("config", None, "Path to an ml_collections config file.")
  out = flags.DEFINE_string("out", None, "Folder for fragments.npy and fragments.png.")
  flags.mark_flags_as_required(["config", "out"])
  return config, out


def main(argv, config: flags.FlagHolder, out: flags.FlagHolder):
  """Inspects the one VIDEO argument with the flags' config."""
  if len(argv) != 2:
    raise app.UsageError(f"expected exactly one VIDEO argument, got {argv[1:]}")
  try:
    npy_path, png_path = write_inspection(argv[1], config.value.sampling, out.value)
  except (video_io.VideoDecodeError, ValueError, OSError) as e:
    sys.exit(f"inspect: {e}")  # the reason, naming the file; exit status 1, no traceback
  print(f"wrote {npy_path} and {png_path}", flush=True)


if __name__ == "__main__":
  _FLAGS = define_flags()
  from vqa_jax.runtime import entry_point  # pylint: disable=g-import-not-at-top
  entry_point.run(lambda argv: main(argv, *_FLAGS))
