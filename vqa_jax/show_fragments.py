"""Shows what the model sees: `python -m vqa_jax.show_fragments VIDEO --config=CFG --out=DIR`.

Samples VIDEO exactly as evaluation does (`config.sampling`, `num_clips_eval` clips, centred
deterministic offsets, before normalisation) and writes

* DIR/fragments.npy: uint8 (clips, T, S, S, 3) with S = grid * patch;
* DIR/fragments.png: a contact sheet, one row per clip and one column per frame.

Exit status: 0 written; 1 the video cannot be read or the files cannot be written (one line naming
the file); 2 a flag to fix.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from vqa_jax.data import show_fragments
from vqa_jax.data import video_io
from vqa_jax.runtime import entry_point

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to an ml_collections config file.")
_OUT = flags.DEFINE_string("out", None, "Folder for fragments.npy and fragments.png.")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
  """Inspects the one VIDEO argument with the flags' config."""
  if len(argv) != 2:
    raise app.UsageError(f"expected exactly one VIDEO argument, got {argv[1:]}")
  try:
    npy_path, png_path = show_fragments.write_inspection(argv[1], _CONFIG.value.sampling,
                                                         _OUT.value)
  except (video_io.VideoDecodeError, ValueError, OSError) as e:
    sys.exit(f"inspect: {e}")  # the reason, naming the file; exit status 1, no traceback
  print(f"wrote {npy_path} and {png_path}", flush=True)


if __name__ == "__main__":
  entry_point.run(main)
