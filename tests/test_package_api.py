"""The installable package's pieces: config names, stored configs, the Scorer API, the
`vqa-jax` command, quiet library logs. The pip-installed end to end run is test_packaging.py."""

import io
import json
import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import yaml

import vqa_jax
from tests.helpers import REPO_ROOT
from tests.helpers import load_config
from tests.video_files import random_frames
from tests.video_files import write_video
from vqa_jax import command
from vqa_jax.config import config_files
from vqa_jax.convert import convert_weights
from vqa_jax.convert import state_dicts
from vqa_jax.runtime import entry_point
from vqa_jax.config import run_config
from vqa_jax.scoring import score
from vqa_jax.models.fast_vqa import build_model

REPO = str(REPO_ROOT)


def test_config_names_resolve_to_the_shipped_files():
  assert config_files.resolve("smoke") == os.path.join(REPO, "configs", "smoke.py")
  assert config_files.resolve("configs/smoke.py") == "configs/smoke.py"  # existing path kept
  assert config_files.resolve("paper/lsvq_fast_vqa_b:/l,/v") == (
      os.path.join(REPO, "configs", "paper", "lsvq_fast_vqa_b.py") + ":/l,/v")
  assert config_files.resolve_argv(["p", "--config", "demo", "--config.x=1", "--workdir=w"]) == [
      "p", "--config", os.path.join(REPO, "configs", "demo.py"), "--config.x=1", "--workdir=w"]
  assert "paper/finetune_konvid" in config_files.names() and "common" not in config_files.names()
  assert config_files.load("sama").train.warmup_steps == 5845  # int(2.5 * 2338), via configs.X
  with pytest.raises(FileNotFoundError, match="no shipped config"):
    config_files.load("no_such_config")


def test_stored_config_is_found_from_inner_folders_with_yaml_beside(tmp_path):
  config = load_config("smoke")
  run_config.write_config(str(tmp_path), config)
  inner = tmp_path / "best" / "checkpoints" / "7"
  inner.mkdir(parents=True)
  stored = run_config.stored_config(str(inner))
  assert stored.model.depths == (1, 1) and stored.train.steps == 6
  assert yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]["embed_dim"] == 16
  with pytest.raises(FileNotFoundError, match="no stored config.json"):
    run_config.stored_config(str(tmp_path.parent / "elsewhere" / "a" / "b" / "c" / "d"))


def _record(path, level):
  return logging.LogRecord("x", level, path, 1, "msg", None, None)


def test_library_info_lines_are_dropped_unless_verbose():
  drop = entry_point.LibraryInfoFilter()
  library = "/site-packages/orbax/checkpoint/manager.py"
  ours = os.path.join(os.path.dirname(vqa_jax.__file__), "trainer.py")
  before = entry_point.logging.get_verbosity()
  try:
    entry_point.logging.set_verbosity(entry_point.logging.INFO)
    assert not drop.filter(_record(library, logging.INFO))
    assert drop.filter(_record(library, logging.WARNING)) and drop.filter(_record(ours, logging.INFO))
    entry_point.logging.set_verbosity(1)  # --verbosity=1
    assert drop.filter(_record(library, logging.INFO))
  finally:
    entry_point.logging.set_verbosity(before)


def test_command_lists_the_programs_and_rejects_unknown_ones(capsys):
  assert set(command.COMMANDS) >= {"train", "score", "convert", "sweep", "finetune", "landscape"}
  with pytest.raises(SystemExit) as e:
    command.main(["vqa-jax", "--help"])
  assert e.value.code == 0 and "python -m vqa_jax.main" in capsys.readouterr().out
  with pytest.raises(SystemExit, match="unknown command 'trian'"):
    command.main(["vqa-jax", "trian"])


def test_package_exposes_only_the_api():
  assert dir(vqa_jax) == ["Score", "Scorer", "__version__", "train"]
  assert vqa_jax.Scorer.__module__ == "vqa_jax.api"


@pytest.fixture(scope="module")
def weights_dir(fast_compile, tmp_path_factory):  # pylint: disable=unused-argument
  """Smoke params saved as converted weights, with the config stored beside, and a video."""
  root = tmp_path_factory.mktemp("api")
  config = load_config("smoke")
  size = config.sampling.grid * config.sampling.patch
  clip = jax.numpy.zeros((1, config.sampling.clip_len, size, size, 3), jax.numpy.uint8)
  params = build_model(config.model).init(jax.random.key(3), clip, train=False)["params"]
  state_dicts.save_variables(str(root / "weights"), {"params": params})
  run_config.write_config(str(root / "weights"), config)
  video = write_video(root / "v.avi", random_frames(20, 40, 48, seed=1))
  return str(root / "weights"), video


def test_scorer_gives_the_score_commands_numbers(weights_dir):
  weights, video = weights_dir
  result = vqa_jax.Scorer.load(weights)(video)
  out = io.StringIO()
  assert score.cli(run_config.stored_config(weights), weights, [video], out=out) == 0
  row = json.loads(out.getvalue())
  assert (result.score, result.mos, result.score_01) == (row["score"], row["mos"], row["score_01"])
  assert result.clips.shape == (2, 4, 32, 32, 3)  # num_clips_eval, clip_len, grid x patch
  assert result.score == pytest.approx(float(result.quality_map.astype("float64").mean()))


def test_scorer_without_a_stored_config_asks_for_one(tmp_path):
  with pytest.raises(FileNotFoundError, match="pass --config"):
    vqa_jax.Scorer.load(str(tmp_path))


def _command(*args):
  """Runs `python -m ARGS...` from the repository; returns (exit code, stdout, stderr)."""
  proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                        timeout=300, check=False)
  return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.integration
def test_print_config_shows_the_resolved_schedule_without_a_workdir():
  code, out, err = _command("vqa_jax.main", "--config=demo", "--config.train.steps=200",
                            "--print_config")
  assert code == 0, err
  train = yaml.safe_load(out)["train"]
  assert (train["steps"], train["warmup_steps"], train["cosine_steps"]) == (200, 8, 200)


@pytest.mark.integration
def test_landscape_help_lists_its_flags():
  code, out, err = _command("vqa_jax.landscape", "--help")
  assert code == 0, err  # absl's own --help exits 1; entry_point's 0
  assert "--checkpoint_b:" in out and "--[no]print_config:" in out


def test_converted_weights_carry_the_config_that_built_them(tmp_path, fast_compile):  # pylint: disable=unused-argument
  config = load_config("smoke")
  size = config.sampling.grid * config.sampling.patch
  clip = jax.numpy.zeros((1, config.sampling.clip_len, size, size, 3), jax.numpy.uint8)
  params = build_model(config.model).init(jax.random.key(5), clip, train=False)["params"]
  state = convert_weights.to_state_dict(jax.tree_util.tree_map(np.asarray, params))
  np.savez(tmp_path / "sd.npz", **state)
  dst = str(tmp_path / "converted")
  convert_weights.convert_file(str(tmp_path / "sd.npz"), dst, "auto",
                               convert_weights.Options(config=config))
  assert run_config.stored_config(dst).model.embed_dim == 16
  result = convert_weights.Result("fast_vqa", "fast_vqa_b", {}, {})
  assert convert_weights.output_config(result, convert_weights.Options()).model.embed_dim == 96
  slowfast = convert_weights.Result("slowfast_r50", "slowfast_r50", {}, {})
  assert convert_weights.output_config(slowfast, convert_weights.Options()) is None
