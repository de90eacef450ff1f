"""Every command in README.md's fenced blocks is run by a test here (or by the test `RUN_BY` names).

`RUN_BY` maps each README command (a bash line without its comment; a Python block by its first
line) to the test that runs it; a README command missing from it fails
`test_every_readme_command_is_run_by_a_test`. The tests take each command from the README itself,
replace only paths, the step count and the program name (`vqa-jax` -> `python -m vqa_jax.command`,
which is what the console script calls) and run it. Default suite: the coverage check, the length,
the AWP snippet, what CI runs and the command-line train-then-score (the default run's end to
end). Integration (`-m "not slow"` or `-m integration`): `vqa-jax models`. Slow (`-m slow`): the named-model quick start via a
loopback mirror, the Python quick start and `bash launch/demo.sh`.
"""

import ast
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shlex
import shutil
import site
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests import model_server
from tests import pth_files
from tests.helpers import REPO_ROOT
from tests.video_files import random_frames
from tests.video_files import write_video
from vqa_jax import perturb

README = REPO_ROOT / "README.md"
HERE = "tests/test_readme_commands.py"

# README command -> "file::test" that runs it (file: this module unless named).
RUN_BY = {
    "bash launch/demo.sh": "test_demo_script_reaches_srcc_08_on_domain_a",
    "bash launch/test.sh": "test_ci_runs_the_test_script",
    "pip install .": "tests/test_packaging.py::test_installed_wheel_runs_from_outside_the_repository",
    "vqa-jax score --model=fast-vqa-b video.mp4": "test_named_model_quick_start_scores_from_a_mirror",
    "vqa-jax models": "test_models_lists_the_named_models_uncached",
    "python -c \"from vqa_jax import Scorer; print(Scorer.from_pretrained('fast-vqa-b')"
    "('video.mp4').score_01)\"": "test_named_model_quick_start_scores_from_a_mirror",
    "vqa-jax train --config=smoke --workdir=/tmp/run --config.train.steps=100":
        "test_command_line_trains_then_scores",
    "vqa-jax score --checkpoint=/tmp/run --jsonl=scores.jsonl video.mp4":
        "test_command_line_trains_then_scores",
    "import vqa_jax": "test_python_quick_start_trains_and_scores",
    "grad_fn = perturb.value_and_grad(loss_fn, \"awp\", radius=1e-3)  # from vqa_jax import perturb":
        "test_awp_snippet_is_one_sgd_step_at_the_awp_gradient",
}
FAST_VQA_MEAN, FAST_VQA_STD = -0.110198185, 0.04178565  # the official FAST-VQA script's constants


def fenced_blocks() -> list[tuple[str, str]]:
  """(language, body) of each fenced code block of README.md."""
  return re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def without_comment(line: str) -> str:
  """A bash line without its trailing `# ...` comment ('' for a comment line or a blank one)."""
  command = re.sub(r"(^|\s+)#(\s.*)?$", "", line).strip()
  assert shlex.split(command) == shlex.split(line, comments=True), f"README.md: {line!r}"
  return command


def readme_commands() -> list[str]:
  """Each bash line of README.md (without comments) and each Python block's first line."""
  commands = []
  for language, body in fenced_blocks():
    if language == "bash":
      commands += [c for c in map(without_comment, body.splitlines()) if c]
    elif language == "python":
      commands.append(body.strip().splitlines()[0])
    else:
      pytest.fail(f"README.md: a ```{language} block; only bash and python blocks are run")
  return commands


def readme_command(prefix: str) -> str:
  """The one README command that starts with `prefix`."""
  (command,) = [c for c in readme_commands() if c.startswith(prefix)]
  return command


def python_block(first_line: str) -> str:
  """The README Python block whose first line is `first_line`."""
  (body,) = [b for lang, b in fenced_blocks() if lang == "python" and b.startswith(first_line)]
  return body


def argv(command: str, replace: dict[str, str]) -> list[str]:
  """The README command's argv, `replace`'s substrings replaced, `vqa-jax`/`python` resolved here."""
  for old, new in replace.items():
    assert old in command, f"{old!r} is no longer in the README command {command!r}"
    command = command.replace(old, new)
  words = shlex.split(command)
  programs = {"vqa-jax": [sys.executable, "-m", "vqa_jax.command"], "python": [sys.executable]}
  return programs[words[0]] + words[1:]


def run(args: list[str], cwd, **env) -> subprocess.CompletedProcess:
  """Runs args with this checkout on PYTHONPATH (and `env` added); fails the test on exit != 0."""
  environ = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **env)
  proc = subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=1800)
  if proc.returncode:
    pytest.fail(f"{args} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
  return proc


def test_every_readme_command_is_run_by_a_test():
  commands = readme_commands()
  assert len(commands) == len(set(commands)), "a README command appears twice"
  assert set(commands) == set(RUN_BY), (
      f"README commands no test runs: {sorted(set(commands) - set(RUN_BY))}; "
      f"RUN_BY entries no longer in the README: {sorted(set(RUN_BY) - set(commands))}")
  for test in set(RUN_BY.values()):
    path, _, name = test.rpartition("::")
    tree = ast.parse((REPO_ROOT / (path or HERE)).read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert name in defined, f"RUN_BY names a missing test {test}"


def test_readme_is_at_most_100_lines():
  assert len(README.read_text(encoding="utf-8").splitlines()) <= 100


def test_ci_runs_the_test_script():
  ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
  assert readme_command("bash launch/test.sh") in ci
  script = (REPO_ROOT / "launch" / "test.sh").read_text(encoding="utf-8")
  assert re.search(r"^exec \.venv/bin/python -m pytest\b", script, re.M)


@pytest.mark.integration
def test_models_lists_the_named_models_uncached(tmp_path):
  line = [l for _, b in fenced_blocks() for l in b.splitlines() if l.startswith("vqa-jax models")]
  promised = re.findall(r"[\w-]+-[\w-]+", line[0].split("#", 1)[1])  # the names its comment lists
  listed = run(argv(readme_command("vqa-jax models"), {}), tmp_path,
               VQA_JAX_CACHE=str(tmp_path / "cache")).stdout
  rows = {l.split()[0]: l.split() for l in listed.splitlines()[1:] if l.strip()}
  assert promised and set(promised) <= set(rows), listed
  assert all(rows[name][3] == "-" for name in promised), listed  # the cached column, empty cache


# In the default run on purpose: its one end-to-end run of the command-line programs (~40 s).
def test_command_line_trains_then_scores(tmp_path):
  workdir, jsonl = str(tmp_path / "run"), str(tmp_path / "scores.jsonl")
  video = write_video(tmp_path / "v.avi", random_frames(20, 40, 48, seed=2))
  # Cheaper XLA compiles (as conftest.fast_compile), on the one CPU device a reader's machine has:
  # conftest's 8 simulated devices cost a third more CPU here; test_data_parallel covers 8.
  quick = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1", "XLA_FLAGS": ""}
  run(argv(readme_command("vqa-jax train"), {"/tmp/run": workdir, "steps=100": "steps=2"}),
      tmp_path, **quick)
  logged = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert max(row["step"] for row in logged) == 2
  scored = run(argv(readme_command("vqa-jax score --checkpoint"),
                    {"/tmp/run": workdir, "scores.jsonl": jsonl, "video.mp4": video}), tmp_path,
               **quick)
  (row,) = [json.loads(l) for l in open(jsonl)]
  assert json.loads(scored.stdout.strip().splitlines()[-1]) == row
  assert row["path"] == video and 0.0 <= row["score_01"] <= 1.0 and math.isfinite(row["score"])


def awp_loss(params, batch, rng):
  """Squared error of a linear model whose predictions carry dropout-like noise keyed by rng."""
  noise = 1.0 + 0.1 * jax.random.normal(rng, batch["y"].shape)
  return jnp.mean((batch["x"] @ params["dense"]["kernel"] * noise - batch["y"]) ** 2)


def test_awp_snippet_is_one_sgd_step_at_the_awp_gradient():
  rng = np.random.default_rng(0)
  params = {"dense": {"kernel": jnp.array(rng.normal(size=3), jnp.float32)}}
  batch = {"x": jnp.array(rng.normal(size=(8, 3)), jnp.float32),
           "y": jnp.array(rng.normal(size=8), jnp.float32)}
  tx = optax.sgd(0.1)
  namespace = {"jax": jax, "optax": optax, "perturb": perturb, "loss_fn": awp_loss, "tx": tx}
  exec(python_block("grad_fn = perturb.value_and_grad"), namespace)  # pylint: disable=exec-used
  key = jax.random.key(2)
  new_params, _, loss = namespace["train_step"](params, tx.init(params), batch, key)
  # By hand: the AWP step along the clean gradient (radius 1e-3 of |w|, boxed), the gradient there
  # with the perturbed pass's key, and w - 0.1 * that gradient applied at the unperturbed w.
  clean_key, perturbed_key, _ = jax.random.split(key, 3)
  w = np.asarray(params["dense"]["kernel"], np.float64)
  g = np.asarray(jax.grad(awp_loss)(params, batch, clean_key)["dense"]["kernel"])
  r = 1e-3 * g / (np.linalg.norm(g) + 1e-6) * (np.linalg.norm(w) + 1e-6)
  r = np.clip(r, -1e-3 * np.abs(w), 1e-3 * np.abs(w))
  moved = {"dense": {"kernel": jnp.array(w + r, jnp.float32)}}
  g_adv = np.asarray(jax.grad(awp_loss)(moved, batch, perturbed_key)["dense"]["kernel"])
  np.testing.assert_allclose(new_params["dense"]["kernel"], w - 0.1 * g_adv, rtol=1e-5)
  np.testing.assert_allclose(loss, awp_loss(params, batch, clean_key), rtol=1e-6)


@pytest.mark.slow
def test_python_quick_start_trains_and_scores(tmp_path):
  video = write_video(tmp_path / "v.avi", random_frames(20, 40, 48, seed=2))
  code = python_block("import vqa_jax")
  code = code.replace("/tmp/run", str(tmp_path / "run")).replace("video.mp4", video)
  printed = io.StringIO()
  namespace = {}
  with contextlib.redirect_stdout(printed):
    exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  assert set(namespace["results"]) == {"test", "cross"}
  result = namespace["result"]
  assert result.clips.shape == (2, 4, 32, 32, 3) and result.quality_map.shape[0] == 2
  last_line = printed.getvalue().strip().splitlines()[-1]  # after the run's result tables
  assert last_line.split()[0] == str(result.score) and result.mos is not None


@pytest.mark.slow
@pytest.mark.integration
def test_named_model_quick_start_scores_from_a_mirror(tmp_path):
  """The release file (random FAST-VQA-B weights in its layout) is served by a loopback mirror."""
  served = pth_files.random_fast_vqa_b_release(seed=0)
  video = write_video(tmp_path / "v.avi", random_frames(40, 72, 96, seed=6))
  with model_server.serve({"/mirror/FAST_VQA_B_1_4.pth": served}) as server:
    env = dict(VQA_JAX_CACHE=str(tmp_path / "cache"), VQA_JAX_MODELS_MIRROR=server.url("/mirror"))
    scored = run(argv(readme_command("vqa-jax score --model"), {"video.mp4": video}), tmp_path,
                 **env)
    from_python = run(argv(readme_command("python -c"), {"video.mp4": video}), tmp_path, **env)
    listed = run(argv(readme_command("vqa-jax models"), {}), tmp_path, **env)
  row = json.loads(scored.stdout.strip().splitlines()[-1])
  assert row["path"] == video
  assert math.isclose(row["score_01"], 1 / (1 + math.exp(-(row["score"] - FAST_VQA_MEAN)
                                                          / FAST_VQA_STD)), rel_tol=1e-9)
  assert math.isclose(float(from_python.stdout.strip().splitlines()[-1]), row["score_01"],
                      rel_tol=1e-6)
  cached = tmp_path / "cache" / "models" / "fast-vqa-b" / "FAST_VQA_B_1_4.pth"
  assert hashlib.sha256(cached.read_bytes()).digest() == hashlib.sha256(served).digest()
  (fast_vqa_b,) = [l.split() for l in listed.stdout.splitlines() if l.startswith("fast-vqa-b ")]
  assert fast_vqa_b[3] != "-"  # now cached


@pytest.mark.slow
@pytest.mark.integration
def test_demo_script_reaches_srcc_08_on_domain_a(tmp_path):
  """launch/demo.sh in a copy of the tree whose .venv sees this interpreter's packages."""
  source = tmp_path / "source"
  shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
      ".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__"))
  environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
  subprocess.run([sys._base_executable, "-m", "venv", "--system-site-packages",  # pylint: disable=protected-access
                  str(source / ".venv")], check=True, env=environ)
  (purelib,) = (source / ".venv" / "lib").glob("python3*/site-packages")
  (purelib / "dependencies.pth").write_text(
      "\n".join(p for p in site.getsitepackages() if "site-packages" in p) + "\n")
  requirements = (source / "requirements.txt").read_bytes()  # setup_venv.sh's stamp: nothing to pip
  (source / ".venv" / ".requirements.sha256").write_text(
      hashlib.sha256(requirements + requirements).hexdigest() + "\n")
  proc = subprocess.run(shlex.split(readme_command("bash launch/demo.sh")), cwd=source,
                        capture_output=True, text=True, timeout=3600,
                        env=dict(environ, WORKDIR=str(tmp_path / "demo"),
                                 VQA_JAX_CACHE=str(tmp_path / "cache")))
  assert proc.returncode == 0, proc.stderr[-3000:]
  (final,) = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith('{"step"')][-1:]
  assert json.loads(final)["results"]["test"]["raw"]["srcc"] >= 0.8
