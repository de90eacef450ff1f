"""Exports the eval-mode scorer out of JAX: a serialized jax.export (StableHLO) and a SavedModel.

  python -m vqa_jax.export [--config=fast_vqa_b] --checkpoint=DIR --out=OUT [--noema] \
      [--formats=jax,saved_model] [--overwrite]

The exported function takes the fragment clips of one video, uint8 (clips, clip_len, S, S, 3)
with S = grid * patch as `score.sample_test_clips` gives them (any number of clips: the first
dimension is symbolic), and returns (score, map): the raw float32 score, the mean of the map,
and the float32 local quality map (clips, T', H', W') of `score.make_map_fn`. The params are
constants inside the artifact (FAST-VQA-family models only). OUT gets

* `scorer.jax_export`: `jax.export.Exported.serialize()` bytes; `load_jax(OUT)` gives the callable
  (any JAX version that reads the serialization version, no model code needed);
* `saved_model/`: a TensorFlow SavedModel made by `jax2tf.convert` (native serialization), with
  the signature `serving_default(clips) -> {'score', 'map'}`; `load_saved_model(OUT)`;
* `export.json`: the input spec, the checkpoint, and its calibration (`vqa_jax.scoring.calibration`, to
  turn the raw score into `mos` / `score_01`), or why it has none.

Without --config, the config stored with DIR is used (as `score`). OUT is written whole or not at
all: the artifacts are built in a hidden sibling folder (`.OUT.partial-*`) and renamed to OUT when
complete, so a failed export leaves no partial OUT. An OUT that already holds files (an earlier
export) is refused unless --overwrite, which replaces it whole: no mix of two exports' artifacts
(a new export.json beside a stale saved_model/) can arise. Exit status: 0 exported; 2 a flag to
fix, in one line before the checkpoint is read (--out a file, not writable, or holding files without
--overwrite; a missing or unusable checkpoint); 1 another error.

TensorFlow is imported only for the SavedModel (lazily, GPUs hidden from it), so the jax export
works where TensorFlow is absent.
"""

from __future__ import annotations

import sys

from absl import flags
from ml_collections import config_flags

from vqa_jax.convert import pretrained
from vqa_jax.runtime import entry_point
from vqa_jax.scoring import calibration
from vqa_jax.scoring import export
from vqa_jax.scoring import score

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the model and sampling (a "
                                          "shipped name or a file); default: the config stored "
                                          "with --checkpoint.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "What `score --checkpoint` takes.")
_OUT = flags.DEFINE_string("out", None, "Output folder, written whole (see --overwrite).")
_EMA = flags.DEFINE_bool("ema", True, "Trainer checkpoints: the EMA params (--noema: raw).")
_FORMATS = flags.DEFINE_list("formats", list(export.FORMATS), f"Any of {export.FORMATS}.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an --out folder that already holds "
                               "files (an earlier export) whole; without it such a folder is "
                               "refused.")
flags.mark_flags_as_required(["checkpoint", "out"])

chosen_config = entry_point.config_or_stored(_CONFIG, lambda: _CHECKPOINT.value)


def main(argv):
  """Exports the flags' checkpoint in --formats to --out."""
  if len(argv) > 1:
    raise entry_point.UsageProblem(f"unexpected arguments: {argv[1:]}")
  unknown = set(_FORMATS.value) - set(export.FORMATS)
  if unknown:
    raise entry_point.UsageProblem(f"--formats: unknown {sorted(unknown)}; choose from "
                                   f"{export.FORMATS}")
  problem = export.out_problem(_OUT.value, _OVERWRITE.value)  # before the checkpoint is read
  if problem:
    raise entry_point.UsageProblem(f"--out={_OUT.value}: {problem}")
  config = chosen_config()
  try:
    with score.reading_checkpoint(_CHECKPOINT.value):
      params = score.load_checkpoint(config, _CHECKPOINT.value, _EMA.value)
      found, note = calibration.for_checkpoint(config, _CHECKPOINT.value, _EMA.value)
  except pretrained.CheckpointError as e:  # as score: an unusable checkpoint is exit code 2
    print(f"error: {e}", file=sys.stderr)
    sys.exit(entry_point.EXIT_USAGE)
  export.export(config, params, _OUT.value, tuple(_FORMATS.value), _CHECKPOINT.value, found, note,
                overwrite=_OVERWRITE.value)
  print(f"exported {_FORMATS.value} to {_OUT.value}")


if __name__ == "__main__":
  entry_point.run(main, chosen_config)
