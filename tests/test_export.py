"""vqa_jax.export: the jax.export artifact and the SavedModel reproduce the JAX scorer (smoke)."""

import json

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
