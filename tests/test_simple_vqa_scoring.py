"""`vqa_jax.score` with a SimpleVQA config: saved or on-the-fly motion features, eval-mode scores."""

import io
import json
import os

import jax
import numpy as np
import pytest

from tests.helpers import load_config
from vqa_jax.config import config_base
from vqa_jax import families
from vqa_jax.scoring import score
from vqa_jax.scoring import simple_vqa_scoring
from vqa_jax.families import simple_vqa_features
from vqa_jax.convert import state_dicts
from vqa_jax.data import sampling
from vqa_jax.data import sources
from vqa_jax.config.specs import SyntheticSpec

pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """The demo config on 4 tiny 8 s videos, a random checkpoint and its variables."""
  root = tmp_path_factory.mktemp("svqa_score")
  config = load_config("simple_vqa_demo")
  config.data.cache_dir = str(root / "cache")
  config.data.synthetic = config_base.synthetic_config(SyntheticSpec(
      num_train=2, num_test=2, num_cross=2, height=64, width=80, num_frames=32, fps=4.0))
  config.sampling.num_clips_eval = 2
  videos = [e.path for e in sources.load_splits(config.data)["test"]]
  family = families.build(config)
  params, model_state = family.init_variables(jax.random.key(7))
  variables = families.variables(params, model_state)
  state_dicts.save_variables(str(root / "ckpt"), variables)
  return config, videos, family, variables, root


def direct_score(config, family, variables, path, motion):
  """The mean of the eval-mode per-frame scores over the centred test frames, by model.apply."""
  frames = sampling.sample_clips(path, config.sampling, config.sampling.num_clips_eval)
  per_frame = [family.model.apply(variables, clip[None], motion[None], train=False)
               for clip in frames]
  return float(np.mean(np.asarray(per_frame, np.float64)))


def test_on_the_fly_motion_is_the_feature_command_s(setup):
  """No motion_dir: SlowFast features computed from the video, as simple_vqa_features writes."""
  config, videos, family, variables, _ = setup
  scorer = simple_vqa_scoring.make_scorer(config, variables)
  extract = simple_vqa_features.make_extractor(config.motion)
  for path in videos:
    motion = extract(simple_vqa_features.video_chunks(path, config.motion))[:8]
    assert scorer(path) == pytest.approx(direct_score(config, family, variables, path, motion),
                                         rel=1e-5)


def test_saved_motion_features_are_used_when_indexed(setup, tmp_path):
  config, videos, family, variables, _ = setup
  rng = np.random.default_rng(0)
  index = {}
  for n, path in enumerate(videos[:1]):
    np.save(tmp_path / f"{n}.npy", rng.normal(size=(8, 288)).astype(np.float32))
    index[os.path.abspath(path)] = f"{n}.npy"
  with open(tmp_path / "index.json", "w", encoding="utf-8") as f:
    json.dump(index, f)
  config = config.copy_and_resolve_references()
  config.data.motion_dir = str(tmp_path)
  scorer = simple_vqa_scoring.make_scorer(config, variables)
  saved = np.load(tmp_path / "0.npy")
  assert scorer(videos[0]) == pytest.approx(
      direct_score(config, family, variables, videos[0], saved), rel=1e-5)


def test_score_command_prints_json_and_reports_bad_files(setup, tmp_path):
  config, videos, _, variables, root = setup
  bad = tmp_path / "broken.mp4"
  bad.write_text("not a video")
  out = io.StringIO()
  code = score.run(config, str(root / "ckpt"), [videos[0], str(bad)], out=out)
  lines = [json.loads(line) for line in out.getvalue().splitlines()]
  assert code == 1
  assert lines[0]["path"] == videos[0] and np.isfinite(lines[0]["score"])
  assert lines[1]["path"] == str(bad) and "error" in lines[1]
  assert lines[0]["score"] == pytest.approx(
      simple_vqa_scoring.make_scorer(config, variables)(videos[0]), rel=1e-6)
  with pytest.raises(ValueError, match="SimpleVQA has none"):
    score.run(config, str(root / "ckpt"), videos[:1], out=io.StringIO(),
              quality_map_path=str(tmp_path / "map.png"))
