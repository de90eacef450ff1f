"""Exports the eval-mode scorer out of JAX: a serialized jax.export (StableHLO) and a SavedModel.

  python -m vqa_jax.export --config=configs/fast_vqa_b.py --checkpoint=DIR --out=OUT [--noema] \
      [--formats=jax,saved_model]

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

TensorFlow is imported only for the SavedModel (lazily, GPUs hidden from it), so the jax export
works where TensorFlow is absent.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax.scoring import calibration as calibration_lib
from vqa_jax.convert import pretrained
from vqa_jax.models.fast_vqa import build_model

PyTree = Any
JAX_FILE = "scorer.jax_export"
SAVED_MODEL_DIR = "saved_model"
SPEC_FILE = "export.json"
FORMATS = ("jax", "saved_model")


def scorer_fn(config: ml_collections.ConfigDict,
              params: PyTree) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
  """clips uint8 (clips, T, S, S, 3) -> (raw score, quality map), eval mode, params closed over."""
  model = build_model(config.model)

  def score_and_map(clips: jax.Array) -> tuple[jax.Array, jax.Array]:
    quality_map = model.apply({"params": params}, clips, train=False).astype(jnp.float32)
    return jnp.mean(quality_map), quality_map

  return score_and_map


def input_spec(config: ml_collections.ConfigDict, clips: int | str = "clips") -> tuple:
  """(clips, clip_len, S, S, 3) of the exported input; `clips` a size or a symbolic name."""
  s = config.sampling
  size = s.grid * s.patch
  return (clips, s.clip_len, size, size, 3)


def export_jax(config: ml_collections.ConfigDict, params: PyTree) -> jax.export.Exported:
  """The jax.export of `scorer_fn` with a symbolic number of clips."""
  (clips,) = jax.export.symbolic_shape("clips")
  shape = jax.ShapeDtypeStruct(input_spec(config, clips), jnp.uint8)
  return jax.export.export(jax.jit(scorer_fn(config, params)))(shape)


def save_saved_model(config: ml_collections.ConfigDict, params: PyTree, directory: str) -> None:
  """Writes `scorer_fn` as a TensorFlow SavedModel via jax2tf (serving_default signature)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  converted = jax2tf.convert(scorer_fn(config, params), with_gradient=False,
                             polymorphic_shapes=["(clips, ...)"])
  module = tf.Module()
  signature = tf.TensorSpec(input_spec(config, None), tf.uint8, name="clips")

  @tf.function(input_signature=[signature], autograph=False)
  def serve(clips):
    score, quality_map = converted(clips)
    return {"score": score, "map": quality_map}

  module.serve = serve
  tf.saved_model.save(module, directory, signatures={"serving_default": serve})


def load_jax(out_dir: str) -> Callable[[np.ndarray], tuple[jax.Array, jax.Array]]:
  """The exported scorer of `out_dir`: clips -> (score, map)."""
  with open(os.path.join(out_dir, JAX_FILE), "rb") as f:
    return jax.export.deserialize(bytearray(f.read())).call


def load_saved_model(out_dir: str) -> Callable[[np.ndarray], dict]:
  """The SavedModel scorer of `out_dir`: clips -> {'score', 'map'} (TensorFlow tensors)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  return tf.saved_model.load(os.path.join(out_dir, SAVED_MODEL_DIR)).signatures["serving_default"]


def export(config: ml_collections.ConfigDict, params: PyTree, out_dir: str,
           formats: tuple[str, ...] = FORMATS, checkpoint: str = "",
           calibration: calibration_lib.Calibration | None = None,
           calibration_note: str = "") -> dict:
  """Writes the requested formats and export.json to `out_dir`; returns export.json's content."""
  unknown = set(formats) - set(FORMATS)
  if unknown:
    raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {FORMATS}")
  os.makedirs(out_dir, exist_ok=True)
  if "jax" in formats:
    with open(os.path.join(out_dir, JAX_FILE), "wb") as f:
      f.write(export_jax(config, params).serialize())
  if "saved_model" in formats:
    save_saved_model(config, params, os.path.join(out_dir, SAVED_MODEL_DIR))
  spec = {"input": {"shape": list(input_spec(config)), "dtype": "uint8",
                    "layout": "clips, frames, height, width, RGB (score.sample_test_clips)"},
          "outputs": {"score": "raw float32 scalar, mean of map",
                      "map": "float32 (clips, T', H', W') local quality map"},
          "formats": list(formats), "checkpoint": checkpoint,
          "calibration": None if calibration is None else calibration.to_json(),
          "calibration_note": calibration_note}
  with open(os.path.join(out_dir, SPEC_FILE), "w") as f:
    json.dump(spec, f, indent=1)
  return spec


def main() -> None:
  """Command line: --config, --checkpoint, --out, --ema, --formats."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from vqa_jax.runtime import entry_point  # pylint: disable=g-import-not-at-top
  from vqa_jax.scoring import score  # pylint: disable=g-import-not-at-top

  config = config_flags.DEFINE_config_file("config", None, "Config of the model and sampling.")
  checkpoint = flags.DEFINE_string("checkpoint", None, "What `score --checkpoint` takes.")
  out = flags.DEFINE_string("out", None, "Output folder.")
  ema = flags.DEFINE_bool("ema", True, "Trainer checkpoints: the EMA params (--noema: raw).")
  formats = flags.DEFINE_list("formats", list(FORMATS), f"Any of {FORMATS}.")
  flags.mark_flags_as_required(["config", "checkpoint", "out"])

  def run_main(argv):
    del argv
    try:
      with score.reading_checkpoint(checkpoint.value):
        params = score.load_checkpoint(config.value, checkpoint.value, ema.value)
        found, note = calibration_lib.for_checkpoint(config.value, checkpoint.value, ema.value)
    except pretrained.CheckpointError as e:  # as score: an unusable checkpoint is exit code 2
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    export(config.value, params, out.value, tuple(formats.value), checkpoint.value, found, note)
    print(f"exported {formats.value} to {out.value}")

  entry_point.run(run_main)


if __name__ == "__main__":
  main()
