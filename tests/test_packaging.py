"""`pip install .` from a clean clone, then the console script from another folder (issue 19).

Slow and subprocess-based: a fresh virtualenv over this interpreter's packages (nothing is
downloaded: --no-deps --no-build-isolation), the smoke config given by name, a run whose
train.steps override rescales the schedule, scoring that run with no --config (and the same number
from the Python API), and a resume whose model changed shape failing with the field listed.
"""

import json
import math
import os
import re
import site
import subprocess
import sys

import pytest

from tests.video_files import random_frames
from tests.video_files import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 60


def run(args, cwd, env, check=True):
  """Runs a command, returning the CompletedProcess (text); fails the test with its stderr."""
  proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
  if check and proc.returncode:
    pytest.fail(f"{args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
  return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """(venv bin folder, a folder outside the repository, env) after `pip install` of a clone."""
  root = tmp_path_factory.mktemp("packaging")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  run(["git", "clone", "--quiet", REPO, str(root / "clone")], str(root), env)
  run([sys._base_executable, "-m", "venv", "--system-site-packages", str(root / "venv")],  # pylint: disable=protected-access
      str(root), env)
  purelib = subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
  with open(os.path.join(purelib, "dependencies.pth"), "w") as f:  # this interpreter's packages
    f.write("\n".join(p for p in site.getsitepackages() if "site-packages" in p) + "\n")
  run([str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
       "--no-build-isolation", str(root / "clone")], str(root), env)
  elsewhere = root / "elsewhere"
  elsewhere.mkdir()
  return root / "venv" / "bin", str(elsewhere), env


@pytest.mark.slow
@pytest.mark.integration
def test_installed_console_script_trains_scores_and_guards_resume(installed, tmp_path):
  bin_dir, cwd, env = installed
  where = run([str(bin_dir / "python"), "-c", "import vqa_jax; print(vqa_jax.__file__)"], cwd, env)
  assert "site-packages" in where.stdout and REPO not in where.stdout
  workdir = str(tmp_path / "run")
  vqa = str(bin_dir / "vqa-jax")
  train = run([vqa, "train", "--config=smoke", f"--workdir={workdir}",
               f"--config.train.steps={STEPS}", "--config.train.checkpoint_every=60"], cwd, env)
  assert "cosine length 60" in train.stderr
  ours = {n for _, _, names in os.walk(os.path.join(REPO, "vqa_jax")) for n in names}
  info_sources = {re.match(r"I[\d :.]+\d+ ([^:\]]+)", l).group(1)
                  for l in train.stderr.splitlines() if re.match(r"I\d{4} ", l)}
  assert {s for s in info_sources if not s.endswith(".cc")} <= ours  # no library INFO lines
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  last = [r for r in rows if "lr_head" in r][-1]
  peak = 1e-3  # smoke's train.learning_rate (base config)
  assert last["step"] == STEPS and last["lr_head"] <= 1e-2 * peak
  assert math.isclose(last["lr_head"], peak * 0.5 * (1 + math.cos(math.pi * 57 / 60)), rel_tol=1e-4)

  video = write_video(tmp_path / "v.avi", random_frames(20, 40, 48, seed=5))
  scored = run([vqa, "score", f"--checkpoint={workdir}", video], cwd, env)
  row = json.loads(scored.stdout)
  api = run([str(bin_dir / "python"), "-c", "import sys; from vqa_jax import Scorer; "
             "print(repr(Scorer.load(sys.argv[1])(sys.argv[2]).score))", workdir, video], cwd, env)
  assert float(api.stdout) == row["score"] and row["mos"] is not None

  printed = run([vqa, "score", f"--checkpoint={workdir}", "--print_config"], cwd, env)
  assert "embed_dim: 16" in printed.stdout and "cosine_steps: 60" in printed.stdout
  sama = run([vqa, "train", "--config=sama", "--print_config"], cwd, env)  # imports configs.X
  assert "warmup_steps: 5845" in sama.stdout  # int(2.5 x 2338), from configs/sama.py
  helped = run([vqa, "landscape", "--help"], cwd, env, check=False)
  assert "--checkpoint_b" in helped.stdout + helped.stderr

  resumed = run([vqa, "train", "--config=smoke", f"--workdir={workdir}",
                 f"--config.train.steps={STEPS}", "--config.model.embed_dim=32"], cwd, env,
                check=False)
  assert resumed.returncode == 1 and "model.embed_dim: 16 -> 32" in resumed.stderr
