"""The eval-mode scorer exported out of JAX for `python -m vqa_jax.export` (whose docstring
describes OUT): `export_jax` (a serialized jax.export, StableHLO), `save_saved_model` (a TensorFlow
SavedModel through jax2tf), their loaders, and `export`, which writes OUT whole or not at all.

TensorFlow is imported only for the SavedModel (lazily, GPUs hidden from it), so the jax export
works where TensorFlow is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vqa_jax.scoring import calibration as calibration_lib
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.runtime import output_folders

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


def out_problem(out_dir: str, overwrite: bool = False) -> str:
  """Why `out_dir` cannot receive an export ('' when it can): a file, a folder that cannot be
  written, or, unless `overwrite`, a folder that already holds files. Creates its parent."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    return "is a file, not a folder"
  if os.path.isdir(out_dir):
    problem = output_folders.problem(out_dir, create=False)
    if problem:
      return problem
    held = sorted(os.listdir(out_dir))
    if held and not overwrite:
      return (f"holds files ({', '.join(held[:4])}{', ...' if len(held) > 4 else ''}); pass "
              "--overwrite to replace the folder whole")
  parent = os.path.dirname(os.path.abspath(out_dir))
  problem = output_folders.problem(parent)
  return f"{parent}: {problem}" if problem else ""


def _replace_folder(built: str, out_dir: str) -> None:
  """Renames the folder `built` to `out_dir`, replacing an existing `out_dir` whole; an
  `out_dir` moved aside is put back if the rename fails."""
  aside = None
  if os.path.lexists(out_dir):
    aside = _sibling(out_dir, "old")
    os.rename(out_dir, aside)
  try:
    os.rename(built, out_dir)
  except BaseException:
    if aside is not None:
      os.rename(aside, out_dir)
    raise
  if aside is not None:
    shutil.rmtree(aside)


def _sibling(path: str, kind: str) -> str:
  """A fresh hidden name beside `path`: DIR/.NAME.KIND-<random>."""
  parent, name = os.path.split(os.path.abspath(path))
  return os.path.join(parent, f".{name}.{kind}-{uuid.uuid4().hex[:12]}")


def export(config: ml_collections.ConfigDict, params: PyTree, out_dir: str,
           formats: tuple[str, ...] = FORMATS, checkpoint: str = "",
           calibration: calibration_lib.Calibration | None = None,
           calibration_note: str = "", overwrite: bool = False) -> dict:
  """Writes the requested formats and export.json as the folder `out_dir`; returns export.json's
  content.

  The folder is built beside `out_dir` and renamed into place when complete. An `out_dir` that
  holds files is refused (output_folders.UnusableFolder, as any `out_problem`) unless `overwrite`,
  which replaces it whole.
  """
  unknown = set(formats) - set(FORMATS)
  if unknown:
    raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {FORMATS}")
  problem = out_problem(out_dir, overwrite)
  if problem:
    raise output_folders.UnusableFolder(f"export folder {out_dir}: {problem}")
  built = _sibling(out_dir, "partial")
  os.mkdir(built)
  try:
    spec = _write(config, params, built, formats, checkpoint, calibration, calibration_note)
    _replace_folder(built, out_dir)
  except BaseException:
    shutil.rmtree(built, ignore_errors=True)
    raise
  return spec


def _write(config: ml_collections.ConfigDict, params: PyTree, out_dir: str,
           formats: tuple[str, ...], checkpoint: str,
           calibration: calibration_lib.Calibration | None, calibration_note: str) -> dict:
  """Writes the formats and export.json into the existing empty folder `out_dir`."""
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
