"""Named models end to end on a loopback server (no internet): the registry's entries, fetch +
strict convert + cache, `Scorer.from_pretrained`, `init.pretrained`, `vqa-jax models` and
`vqa-jax score --model`. Small entries registered here point at the smoke config's tiny model,
served in the upstream key layouts (official FAST-VQA, Kinetics Video Swin)."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests import model_server
from tests import pth_files
from tests import video_files
from tests.helpers import REPO_ROOT
from tests.helpers import assert_trees_equal
from tests.helpers import load_config
from vqa_jax import Scorer
from vqa_jax import families
from vqa_jax.config import config_files
from vqa_jax.config import run_config
from vqa_jax.config import validation
from vqa_jax.convert import convert_weights
from vqa_jax.convert import pretrained
from vqa_jax.pretrained import cache
from vqa_jax.pretrained import download
from vqa_jax.pretrained import registry
from vqa_jax.scoring import calibration
from vqa_jax.scoring import score as score_lib


@pytest.fixture(scope="module")
def params():
  """Random float32 params shaped as the smoke config's tiny FAST-VQA model's (no init run)."""
  rng = np.random.default_rng(3)
  abstract = families.abstract_variables(load_config("smoke").model)["params"]
  return jax.tree_util.tree_map(
      lambda leaf: (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32), abstract)


def official_file(params) -> bytes:
  """The tiny model in the official FAST-VQA release layout ({'state_dict': ...})."""
  return pth_files.pth_bytes({"state_dict": convert_weights.to_state_dict(params)})


def kinetics_file(params) -> bytes:
  """The tiny backbone in the Kinetics Video Swin layout: no fragment tables, a 400-class head."""
  state = {k: v for k, v in convert_weights.to_state_dict(
      params, convert_weights.KINETICS_PREFIXES).items() if "fragment_position" not in k}
  state |= {"cls_head.fc_cls.weight": np.ones((400, 32), np.float32),
            "cls_head.fc_cls.bias": np.zeros(400, np.float32)}
  return pth_files.pth_bytes({"meta": {"epoch": 30}, "state_dict": state})


def mismatched_file(params) -> bytes:
  """The official layout with one key missing and one unexpected."""
  state = convert_weights.to_state_dict(params)
  del state["vqa_head.fc_last.bias"]
  state["fragments_backbone.extra.weight"] = np.zeros(2, np.float32)
  return pth_files.pth_bytes({"state_dict": state})


@pytest.fixture(scope="module")
def server(params):
  files = {"/TINY.pth": official_file(params), "/K400.pth": kinetics_file(params),
           "/BAD.pth": mismatched_file(params)}
  with model_server.serve(files) as s:
    yield s


def tiny_entry(name: str, file_name: str, url: str, kind: str = registry.SCORER) -> registry.Entry:
  """A registry entry of the smoke model (its config 'smoke')."""
  return registry.make_entry(name=name, file_name=file_name, url=url, documented_at="this test",
                             kind=kind, family="fast_vqa", config="smoke", converter="fast_vqa",
                             metrics={"plcc": 0.5}, metrics_source="none")


@pytest.fixture
def entries(server, tmp_path, monkeypatch):
  """Test entries on the loopback server, an empty cache, no offline / mirror settings."""
  monkeypatch.setenv("VQA_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.delenv(download.OFFLINE_ENV, raising=False)
  monkeypatch.delenv(download.MIRROR_ENV, raising=False)
  made = {"tiny": tiny_entry("tiny-vqa", "TINY.pth", server.url("/TINY.pth")),
          "k400": tiny_entry("tiny-k400", "K400.pth", server.url("/K400.pth"), registry.BACKBONE),
          "bad": tiny_entry("tiny-bad", "BAD.pth", server.url("/BAD.pth"))}
  for entry in made.values():
    registry.register(entry)
  server.requests.clear()
  yield made
  for entry in made.values():
    registry.unregister(entry.name)


def test_registry_names_the_upstream_files():
  """URLs as the upstream READMEs list them (FAST-VQA @9f264e4 l.200-206, Video Swin @db018fb
  l.28); the configs and converters exist; scorers keep the upstream calibration."""
  release = "https://github.com/TimothyHTimothy/FAST-VQA/releases/download/v2.0.0/"
  assert {n: registry.get(n).url for n in ("fast-vqa-b", "faster-vqa", "fast-vqa-m", "swin-t-k400")
          } == {"fast-vqa-b": release + "FAST_VQA_B_1_4.pth",
                "faster-vqa": release + "FAST_VQA_3D_1_1.pth",
                "fast-vqa-m": release + "FAST_VQA_M_1_4.pth",
                "swin-t-k400": "https://github.com/SwinTransformer/storage/releases/download/"
                               "v1.0.4/swin_tiny_patch244_window877_kinetics400_1k.pth"}
  assert registry.get("fast-vqa-b").metrics["plcc_konvid"] == 0.855
  assert registry.get("faster-vqa").metrics["plcc_lsvq_test"] == 0.874
  assert registry.get("swin-t-k400").metrics["k400_top1"] == 78.8
  for name in registry.names():
    entry = registry.get(name)
    assert entry.url.endswith("/" + entry.file_name) and entry.sha256 is None
    assert entry.converter in convert_weights.FORMATS and "github.com" in entry.documented_at
    config = config_files.load(entry.config)
    if entry.kind == registry.SCORER:
      assert calibration.upstream_name(config) is not None, name
  with pytest.raises(KeyError, match="unknown pretrained model 'nope'.*fast-vqa-b"):
    registry.get("nope")
  with pytest.raises(ValueError, match="exists"):
    registry.register(registry.get("fast-vqa-b"))


def test_fetch_convert_once_and_load(entries, params, server):
  path = cache.ensure("tiny-vqa", show_progress=False)
  assert path == os.path.join(os.environ["VQA_JAX_CACHE"], "models", "tiny-vqa", "flax")
  assert_trees_equal(pretrained.load_params(path), params)
  assert run_config.stored_config(path).to_dict() == config_files.load("smoke").to_dict()
  source = json.loads(pathlib.Path(path, cache.SOURCE_FILE).read_text())
  record = download.recorded(cache.raw_path(entries["tiny"]))
  assert source["sha256"] == record["sha256"]
  stamp = os.stat(os.path.join(path, cache.SOURCE_FILE)).st_mtime_ns
  assert cache.ensure("tiny-vqa", show_progress=False) == path  # cached: no request, no convert
  assert os.stat(os.path.join(path, cache.SOURCE_FILE)).st_mtime_ns == stamp
  assert server.requests == [("/TINY.pth", None)]
  assert cache.status("tiny-vqa") == "converted"


def test_mismatched_keys_are_named_and_nothing_is_converted(entries):
  with pytest.raises(ValueError) as error:
    cache.ensure("tiny-bad", show_progress=False)
  message = str(error.value)
  assert "BAD.pth (tiny-bad)" in message
  assert "vqa_head.fc_last.bias" in message and "fragments_backbone.extra.weight" in message
  assert not os.path.exists(cache.converted_path(entries["bad"]))
  assert cache.status("tiny-bad") == "downloaded"


def test_wrong_published_hash_caches_nothing(entries, server):
  entry = registry.register(dataclasses.replace(entries["tiny"], sha256="ab" * 32), replace=True)
  with pytest.raises(download.DownloadError, match="differs from the published SHA-256"):
    cache.ensure("tiny-vqa", show_progress=False)
  assert sorted(os.listdir(cache.entry_dir(entry.name))) == ["TINY.pth.lock", "flax.lock"]
  assert cache.status("tiny-vqa") == "-"


def test_scorer_from_pretrained_scores_as_the_served_params(entries, params, tmp_path,
                                                           fast_compile):  # pylint: disable=unused-argument
  video = video_files.write_mp4(tmp_path / "clip.mp4", video_files.random_frames(16, 48, 64))
  result = Scorer.from_pretrained("tiny-vqa")(video)
  config = load_config("smoke")
  assert result.score == score_lib.make_scorer(config, params)(video)
  assert result.mos is None  # the smoke model reproduces no upstream model: no calibration
  with pytest.raises(ValueError, match="tiny-k400 is a backbone.*init.pretrained=tiny-k400"):
    Scorer.from_pretrained("tiny-k400")


def test_offline_and_mirrors(entries, params, server, tmp_path, monkeypatch):
  monkeypatch.setenv(download.OFFLINE_ENV, "1")
  target = cache.raw_path(entries["tiny"])
  with pytest.raises(download.OfflineError, match=f"place it at {target}"):
    cache.ensure("tiny-vqa")
  assert server.requests == []
  monkeypatch.delenv(download.OFFLINE_ENV)
  registry.register(tiny_entry("tiny-vqa", "TINY.pth", "http://127.0.0.1:9/unreachable.pth"),
                    replace=True)
  mirror = tmp_path / "mirror"
  mirror.mkdir()
  (mirror / "TINY.pth").write_bytes(official_file(params))
  monkeypatch.setenv(download.MIRROR_ENV, mirror.as_uri())
  assert_trees_equal(pretrained.load_params(cache.ensure("tiny-vqa", show_progress=False)), params)
  assert cache.listing()[2].split()[-1] != "http://127.0.0.1:9/unreachable.pth"
  monkeypatch.setenv(download.MIRROR_ENV, server.url("/"))
  assert cache.fetch("tiny-bad", show_progress=False).endswith("BAD.pth")
  assert server.requests == [("/BAD.pth", None)]
  monkeypatch.setenv(download.OFFLINE_ENV, "1")  # offline, cached: loads without the network
  assert Scorer.from_pretrained("tiny-vqa").config.model.embed_dim == 16


def test_init_pretrained_converts_the_backbone_for_the_run(entries, params):
  config = load_config("smoke")
  config.init.pretrained = "tiny-k400"
  validation.validate(config)
  from vqa_jax.training import trainer  # pylint: disable=g-import-not-at-top
  assert trainer.has_init(config)
  path = trainer.init_checkpoint(config)
  assert os.path.basename(path) == f"flax-{cache.config_digest(config)}"
  abstract = families.abstract_variables(config.model)["params"]
  loaded = jax.tree_util.tree_map(np.asarray, pretrained.load_params(path, like=abstract))
  table = "fragment_position_bias_table"
  backbone = {k: v for k, v in params["backbone"].items()}
  for layer, leaves in loaded["backbone"].items():  # every leaf read, fragment tables zero
    if not isinstance(leaves, dict):
      continue
    for block, value in leaves.items():
      if isinstance(value, dict) and table in value.get("attn", {}):
        assert not np.any(value["attn"][table])
        value["attn"][table] = backbone[layer][block]["attn"][table]
  assert_trees_equal(loaded["backbone"], params["backbone"])
  assert not np.array_equal(loaded["head"]["fc_last"]["kernel"], params["head"]["fc_last"]["kernel"])
  config.init.checkpoint = "/elsewhere"
  with pytest.raises(ValueError, match="not both"):
    validation.check_init(config.init)
  config.init.checkpoint, config.init.pretrained = "", "nope"
  with pytest.raises(ValueError, match="'nope' is not a registered model"):
    validation.check_init(config.init)


def test_models_listing_shows_the_cache_state(entries):
  def state(name):
    return next(line.split()[3] for line in cache.listing() if line.startswith(name))
  assert state("tiny-vqa") == "-" and state("fast-vqa-b") == "-"
  cache.fetch("tiny-vqa", show_progress=False)
  assert state("tiny-vqa") == "downloaded"
  cache.ensure("tiny-vqa", show_progress=False)
  assert state("tiny-vqa") == "converted"


_SCORE_SCRIPT = """
import sys
from vqa_jax.pretrained import registry
registry.register(registry.make_entry(
    name="tiny-vqa", file_name="TINY.pth", url=sys.argv[1], documented_at="test", kind="scorer",
    family="fast_vqa", config="smoke", converter="fast_vqa", metrics={}, metrics_source="none"))
sys.argv = ["vqa-jax score", "--model=tiny-vqa", *sys.argv[2:]]
import runpy
runpy.run_module("vqa_jax.score", run_name="__main__", alter_sys=True)
"""


@pytest.mark.integration
def test_cli_score_model_and_models_command(server, params, tmp_path):
  """`vqa-jax score --model=NAME` (entry registered in the child) and `vqa-jax models`."""
  video = video_files.write_mp4(tmp_path / "clip.mp4", video_files.random_frames(16, 48, 64))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *sys.path]),
             VQA_JAX_CACHE=str(tmp_path / "cache"))
  env.pop(download.OFFLINE_ENV, None)
  env.pop(download.MIRROR_ENV, None)
  result = subprocess.run([sys.executable, "-c", _SCORE_SCRIPT, server.url("/TINY.pth"), video],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  row = json.loads(result.stdout.strip().splitlines()[-1])
  assert row["score"] == pytest.approx(score_lib.make_scorer(load_config("smoke"), params)(video),
                                       rel=1e-6)
  result = subprocess.run([sys.executable, "-m", "vqa_jax.command", "models"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("fast-vqa-b", "faster-vqa", "fast-vqa-m", "swin-t-k400"):
    assert any(line.startswith(name + " ") for line in result.stdout.splitlines()), name
  env[download.OFFLINE_ENV] = "1"
  result = subprocess.run([sys.executable, "-m", "vqa_jax.command", "score", "--model=fast-vqa-b",
                           video], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
  assert result.returncode == 2
  assert "FAST_VQA_B_1_4.pth" in result.stderr and "place it at" in result.stderr
