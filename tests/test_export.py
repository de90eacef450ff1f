"""vqa_jax.export: the jax.export artifact and the SavedModel reproduce the JAX scorer (smoke); the
output folder is written whole, never mixing two exports."""

import errno
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import init_params
from tests.helpers import load_config
from vqa_jax.scoring import calibration
from vqa_jax.scoring import export
from vqa_jax.scoring import score
from vqa_jax.models.fast_vqa import build_model
from vqa_jax.runtime import output_folders


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """Smoke params exported in both formats, and two inputs of 2 and 3 clips."""
  config = load_config("smoke")
  (params,) = init_params(build_model(config.model), (5,))
  out = tmp_path_factory.mktemp("export")
  note = calibration.upstream("FAST-VQA")  # any calibration: it is carried to export.json
  spec = export.export(config, params, str(out), checkpoint="ckpt", calibration=note)
  rng = np.random.default_rng(0)
  inputs = [rng.integers(0, 256, (n, 4, 32, 32, 3), np.uint8) for n in (2, 3)]
  return dict(config=config, params=params, out=out, spec=spec, inputs=inputs)


def reference(fixture, clips):
  """(score, map) of the JAX model as `score` computes them."""
  quality_map = score.make_map_fn(fixture["config"], fixture["params"], clip_chunk=0)(clips)
  return float(np.mean(quality_map, dtype=np.float64)), quality_map


def test_jax_export_round_trips(exported):
  call = export.load_jax(str(exported["out"]))
  for clips in exported["inputs"]:  # symbolic clip count: 2 and 3 clips, one artifact
    expected_score, expected_map = reference(exported, clips)
    got_score, got_map = call(jnp.asarray(clips))
    np.testing.assert_allclose(np.asarray(got_map), expected_map, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(got_score), expected_score, rtol=1e-5, atol=1e-5)


def test_saved_model_round_trips(exported):
  serve = export.load_saved_model(str(exported["out"]))
  for clips in exported["inputs"]:
    expected_score, expected_map = reference(exported, clips)
    got = serve(clips=clips)
    np.testing.assert_allclose(got["map"].numpy(), expected_map, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(got["score"].numpy()), expected_score, rtol=1e-5, atol=1e-5)


def test_export_json_describes_the_input_and_calibration(exported):
  spec = json.loads((exported["out"] / export.SPEC_FILE).read_text())
  assert spec["input"]["shape"] == ["clips", 4, 32, 32, 3] and spec["input"]["dtype"] == "uint8"
  assert calibration.Calibration.from_json(spec["calibration"]) == calibration.upstream("FAST-VQA")
  with pytest.raises(ValueError, match="unknown export formats"):
    export.export(exported["config"], exported["params"], str(exported["out"]), ("onnx",))


def test_exported_function_is_the_scorer(exported):
  fn = export.scorer_fn(exported["config"], exported["params"])
  clips = exported["inputs"][0]
  got_score, got_map = jax.jit(fn)(clips)
  expected_score, expected_map = reference(exported, clips)
  np.testing.assert_allclose(np.asarray(got_map), expected_map, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(float(got_score), expected_score, rtol=1e-6, atol=1e-6)


def _export_jax(fixture, out, **kwargs) -> dict:
  """The fixture's params exported again, jax format only, as checkpoint 'new'."""
  return export.export(fixture["config"], fixture["params"], str(out), formats=("jax",),
                       checkpoint="new", **kwargs)


def _earlier_export(fixture, tmp_path):
  """A copy of the fixture's export (both formats, checkpoint 'ckpt') in tmp_path/out."""
  out = tmp_path / "out"
  shutil.copytree(fixture["out"], out)
  return out


def test_a_folder_holding_an_earlier_export_is_refused_unless_overwrite(exported, tmp_path):
  out = _earlier_export(exported, tmp_path)
  with pytest.raises(output_folders.UnusableFolder,
                     match=r"holds files \(export.json, saved_model, scorer.jax_export\); pass "
                     "--overwrite"):
    _export_jax(exported, out)
  assert sorted(os.listdir(out)) == ["export.json", "saved_model", "scorer.jax_export"]
  assert json.loads((out / export.SPEC_FILE).read_text())["checkpoint"] == "ckpt"

  _export_jax(exported, out, overwrite=True)  # replaced whole: the stale saved_model/ is gone
  assert sorted(os.listdir(out)) == ["export.json", "scorer.jax_export"]
  spec = json.loads((out / export.SPEC_FILE).read_text())
  assert (spec["checkpoint"], spec["formats"]) == ("new", ["jax"])
  assert os.listdir(tmp_path) == ["out"]  # no partial or set-aside sibling left
  clips = exported["inputs"][0]
  got_score, _ = export.load_jax(str(out))(clips)
  np.testing.assert_allclose(float(got_score), reference(exported, clips)[0], rtol=1e-5, atol=1e-5)


def test_a_failed_export_leaves_the_earlier_one_whole(exported, tmp_path, monkeypatch):
  out = _earlier_export(exported, tmp_path)
  before = {name: (out / name).read_bytes() for name in (export.SPEC_FILE, export.JAX_FILE)}

  def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(export, "export_jax", disk_full)
  with pytest.raises(OSError, match="No space left on device"):
    _export_jax(exported, out, overwrite=True)
  assert sorted(os.listdir(out)) == ["export.json", "saved_model", "scorer.jax_export"]
  assert {name: (out / name).read_bytes() for name in before} == before
  assert os.listdir(tmp_path) == ["out"]


def test_an_empty_or_new_folder_is_written_and_a_file_refused(exported, tmp_path):
  (tmp_path / "empty").mkdir()
  for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
    _export_jax(exported, out)
    assert sorted(os.listdir(out)) == ["export.json", "scorer.jax_export"]
  afile = tmp_path / "afile"
  afile.write_text("x")
  with pytest.raises(output_folders.UnusableFolder, match="is a file, not a folder"):
    _export_jax(exported, afile, overwrite=True)
  assert afile.read_text() == "x"
