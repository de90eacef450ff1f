"""What `pip install .` installs, checked on a built wheel and on an installed one.

Default suite: the wheel built from a copy of this working tree holds every folder of `vqa_jax/`
that has an `__init__.py` and every shipped config; installed without dependencies into a fresh
virtualenv that sees this interpreter's packages (nothing is downloaded: --no-deps
--no-build-isolation), its console script and every subpackage work from a folder outside the
repository. Slow: the smoke config trained by name, scored with no --config (and the same number
from the Python API), and a resume whose model changed shape failing with the field listed.
"""

import json
import math
import os
import re
import shutil
import site
import subprocess
import sys
import zipfile

import pytest

from tests.video_files import random_frames
from tests.video_files import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 60
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "runs", "workdir*", "build", "dist",
                                     "*.egg-info", "__pycache__", ".pytest_cache", ".whl", ".gl")


def run(args, cwd, env, check=True):
  """Runs a command, returning the CompletedProcess (text); fails the test with its stderr."""
  proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
  if check and proc.returncode:
    pytest.fail(f"{args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
  return proc


def source_packages(root: str, top: str) -> set[str]:
  """Dotted names of the folders under root/top that hold an `__init__.py` (walked on disk)."""
  found = set()
  for folder, dirs, files in os.walk(os.path.join(root, top)):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    if "__init__.py" in files:
      found.add(os.path.relpath(folder, root).replace(os.sep, "."))
  return found


def shipped_configs(root: str) -> set[str]:
  """Every `.py` file under root/configs, as its path inside the wheel (vqa_jax/configs/...)."""
  return {"vqa_jax/" + os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
          for folder, _, files in os.walk(os.path.join(root, "configs"))
          for name in files if name.endswith(".py")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The wheel `pip wheel .` builds from a copy of this working tree (the tree itself stays clean)."""
  root = tmp_path_factory.mktemp("wheel")
  source = root / "source"
  shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
       "-w", str(root / "dist"), str(source)], str(root), env)
  (built,) = (root / "dist").glob("vqa_jax-*.whl")
  return str(built)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
  """(venv bin folder, a folder outside the repository, env) after `pip install` of the wheel."""
  root = tmp_path_factory.mktemp("packaging")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  run([sys._base_executable, "-m", "venv", "--system-site-packages", str(root / "venv")],  # pylint: disable=protected-access
      str(root), env)
  purelib = subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                            "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
  with open(os.path.join(purelib, "dependencies.pth"), "w") as f:  # this interpreter's packages
    f.write("\n".join(p for p in site.getsitepackages() if "site-packages" in p) + "\n")
  run([str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
       wheel], str(root), env)
  elsewhere = root / "elsewhere"
  elsewhere.mkdir()
  return root / "venv" / "bin", str(elsewhere), env


def test_wheel_holds_every_subpackage_and_every_shipped_config(wheel):
  names = set(zipfile.ZipFile(wheel).namelist())
  packages = source_packages(REPO, "vqa_jax")
  configs = shipped_configs(REPO)
  assert {"vqa_jax.training", "vqa_jax.scoring", "vqa_jax.data.tfds_builders"} <= packages
  assert {"vqa_jax/configs/smoke.py", "vqa_jax/configs/paper/lsvq_fast_vqa_b_awp.py"} <= configs
  missing = sorted(p for p in packages if p.replace(".", "/") + "/__init__.py" not in names)
  assert not missing, f"packages missing from the wheel: {missing}"
  assert not sorted(configs - names), f"configs missing from the wheel: {sorted(configs - names)}"
  modules = {n for n in names if n.endswith(".py")}
  sources = {os.path.relpath(os.path.join(d, f), REPO).replace(os.sep, "/")
             for d, _, files in os.walk(os.path.join(REPO, "vqa_jax")) for f in files
             if f.endswith(".py")}
  assert sources <= modules, f"modules missing from the wheel: {sorted(sources - modules)}"


def test_installed_wheel_runs_from_outside_the_repository(installed):
  bin_dir, cwd, env = installed
  vqa = str(bin_dir / "vqa-jax")
  helped = run([vqa, "--help"], cwd, env)
  assert "commands:" in helped.stdout and "train" in helped.stdout
  printed = run([vqa, "train", "--config=smoke", "--print_config"], cwd, env)
  assert "embed_dim: 16" in printed.stdout  # smoke's model (configs/smoke.py)
  packages = sorted(source_packages(REPO, "vqa_jax"))
  script = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "  module = importlib.import_module(name)\n"
            "  print(name, module.__file__)\n")
  imported = run([str(bin_dir / "python"), "-c", script, *packages], cwd, env)
  where = dict(line.split(" ", 1) for line in imported.stdout.splitlines())
  assert sorted(where) == packages
  outside = [name for name, path in where.items()
             if "site-packages" not in path or path.startswith(REPO + os.sep)]
  assert not outside, f"imported from the checkout, not the installed wheel: {outside}"


@pytest.mark.slow
@pytest.mark.integration
def test_installed_console_script_trains_scores_and_guards_resume(installed, tmp_path):
  bin_dir, cwd, env = installed
  where = run([str(bin_dir / "python"), "-c", "import vqa_jax; print(vqa_jax.__file__)"], cwd, env)
  assert "site-packages" in where.stdout and not where.stdout.startswith(REPO)
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


@pytest.mark.slow
@pytest.mark.integration
def test_installed_scores_a_clip_with_a_named_model_from_a_loopback_mirror(installed, tmp_path):
  """`vqa-jax score --model=fast-vqa-b` of the installed wheel, the upstream file (random
  FAST-VQA-B weights in the official release layout) served by a loopback mirror."""
  import hashlib  # pylint: disable=g-import-not-at-top
  from tests import model_server  # pylint: disable=g-import-not-at-top
  from tests import pth_files  # pylint: disable=g-import-not-at-top

  bin_dir, cwd, env = installed
  served = pth_files.random_fast_vqa_b_release(seed=0)
  video = write_video(tmp_path / "v.avi", random_frames(40, 72, 96, seed=6))
  with model_server.serve({"/mirror/FAST_VQA_B_1_4.pth": served}) as server:
    env = dict(env, VQA_JAX_CACHE=str(tmp_path / "cache"),
               VQA_JAX_MODELS_MIRROR=server.url("/mirror"))
    scored = run([str(bin_dir / "vqa-jax"), "score", "--model=fast-vqa-b", video], cwd, env)
    listed = run([str(bin_dir / "vqa-jax"), "models"], cwd, env)
  row = json.loads(scored.stdout.strip().splitlines()[-1])
  mean, std = -0.110198185, 0.04178565  # the official script's FAST-VQA constants (calibration.py)
  assert math.isclose(row["score_01"], 1 / (1 + math.exp(-(row["score"] - mean) / std)),
                      rel_tol=1e-9)
  cached = tmp_path / "cache" / "models" / "fast-vqa-b" / "FAST_VQA_B_1_4.pth"
  assert cached.read_bytes() == served
  record = json.loads((cached.parent / "FAST_VQA_B_1_4.pth.json").read_text())
  assert hashlib.sha256(served).hexdigest() in json.dumps(record)
  assert "fast-vqa-b" in listed.stdout
