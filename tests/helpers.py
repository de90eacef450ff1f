"""Helpers shared by the test modules (test modules never import each other).

Paths, the one config loader, tree comparisons that fail on a structure mismatch, what a training
run leaves in its workdir, `python -m vqa_jax.main` runs stopped by a signal, small fixed inputs,
a hand-driven clock and the numpy AWP reference. Pytest fixtures shared by several modules live
in conftest.py; video files in video_files.py.
"""

import glob
import os
import pathlib
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

# ------------------------------------------------------------------------------------ configs


def load_config(spec: str):
  """The config of a shipped name ('smoke', 'paper/lsvq_fast_vqa_b') or a path, with ':ARGS'.

  The library's own loader (`--config` resolves names the same way): get_config(), or
  get_config(ARGS) for 'NAME:ARGS'.
  """
  from vqa_jax.config import config_files  # pylint: disable=g-import-not-at-top
  return config_files.load(str(spec))


def paper_config(name: str, arg: str = ""):
  """configs/paper/<name>.py's get_config(arg)."""
  return load_config(f"paper/{name}:{arg}")


# -------------------------------------------------------------------------------------- trees


def assert_same_structure(*trees) -> None:
  """All trees have one structure: the same nodes and keys (a missing subtree fails here)."""
  first = jax.tree.structure(trees[0])
  for i, tree in enumerate(trees[1:], 1):
    other = jax.tree.structure(tree)
    assert other == first, f"tree {i}'s structure differs from tree 0's:\n{other}\n!=\n{first}"


def assert_trees_close(actual, expected, *, rtol: float = 1e-7, atol: float = 0.0) -> None:
  """One structure, then every leaf close (np.testing.assert_allclose's rtol / atol)."""
  assert_same_structure(actual, expected)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                               err_msg=f"leaf {jax.tree_util.keystr(path)}")


def assert_trees_equal(actual, expected) -> None:
  """One structure, then every leaf equal (shape and values; np.testing.assert_array_equal)."""
  assert_same_structure(actual, expected)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b),
                                  err_msg=f"leaf {jax.tree_util.keystr(path)}", strict=True)


def zip_leaves(*trees) -> list[tuple]:
  """The leaves of trees of one structure, side by side (asserted: no silent truncation)."""
  assert_same_structure(*trees)
  return list(zip(*(jax.tree.leaves(t) for t in trees)))


# ------------------------------------------------------------------------- a run's workdir


def saved_checkpoint(workdir) -> dict:
  """Everything in the newest checkpoint of `workdir`, as numpy arrays."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import checkpointing  # pylint: disable=g-import-not-at-top
  manager = checkpointing.checkpoint_manager(str(workdir))
  with checkpointing.finishing(manager):  # closed: no orbax thread outlives it
    restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())
  return jax.device_get(restored)


def saved_params(workdir) -> dict:
  """{'params', 'ema_params'} of the newest checkpoint in `workdir`, as numpy arrays."""
  restored = saved_checkpoint(workdir)
  return {"params": restored["params"], "ema_params": restored["ema_params"]}


def learning_scalars(metrics_file) -> list[dict]:
  """The records of a metrics.jsonl without the timing scalars (which differ between runs)."""
  from vqa_jax.training import run_log  # pylint: disable=g-import-not-at-top
  from vqa_jax.training import throughput  # pylint: disable=g-import-not-at-top
  return [{k: v for k, v in r.items() if k not in throughput.KEYS}
          for r in run_log.read_jsonl(metrics_file)]


def checkpoint_steps(workdir) -> list[int]:
  """The finalized checkpoint steps in workdir (orbax renames a step folder when it is complete)."""
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def truncate_data_files(step_dir) -> None:
  """Halves every array data file of a checkpoint step, as a full disk or a crash would.

  (Every one: an asynchronous save may leave data files its manifest no longer refers to.)
  """
  files = glob.glob(os.path.join(step_dir, "**", "d", "*"), recursive=True)
  assert files
  for path in files:
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)


# ------------------------------------------------- `python -m vqa_jax.main` stopped by a signal

SIGNALLED_RUN_STEPS = 60
SIGNALLED_RUN_FLAGS = ["--config=configs/smoke.py", f"--config.train.steps={SIGNALLED_RUN_STEPS}",
                       "--config.train.checkpoint_every=5", "--config.train.log_every=5"]


def signalled_run_command(workdir) -> list[str]:
  """The smoke run of SIGNALLED_RUN_STEPS steps, a checkpoint every 5, into `workdir`."""
  return [sys.executable, "-m", "vqa_jax.main", *SIGNALLED_RUN_FLAGS, f"--workdir={workdir}"]


def start_and_signal(workdir, env, sig, after_step) -> tuple[int, str]:
  """Starts that run, sends `sig` once a checkpoint past `after_step` exists; (rc, stderr)."""
  proc = subprocess.Popen(signalled_run_command(workdir), cwd=REPO_ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 600
  while not any(s > after_step for s in checkpoint_steps(workdir)):
    assert proc.poll() is None, "the run ended before it could be signalled"
    assert time.monotonic() < deadline
    time.sleep(0.01)
  proc.send_signal(sig)
  _, stderr = proc.communicate(timeout=600)
  return proc.returncode, stderr


# ----------------------------------------------------------------------------- fixed inputs


def smoke_batch(seed: int) -> dict:
  """8 uint8 smoke-sized videos whose brightness ranks like their labels."""
  rng = np.random.default_rng(seed)
  labels = rng.permutation(np.linspace(1.0, 5.0, 8)).astype(np.float32)
  video = rng.integers(0, 60, size=(8, 4, 32, 32, 3)) + 40 * labels[:, None, None, None, None]
  return {"video": video.astype(np.uint8), "label": labels}


def init_params(model, seeds: tuple[int, ...]) -> list:
  """Smoke-model params for each seed (jitted: op-by-op init compiles far more on CPU)."""
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, 4, 32, 32, 3), jnp.uint8),
                                        train=False)["params"])
  return [init(jax.random.key(seed)) for seed in seeds]


def member_state(states, i):
  """Member i of stacked states (`train_step.stack_states`)."""
  return jax.tree_util.tree_map(lambda x: x[i], states)


def linear_loss(params, batch, rng):
  """A linear scorer with multiplicative dropout-like noise keyed by rng, under the PLCC loss.

  The rank loss is left out: its max-normaliser has a gradient kink that float rounding can flip,
  which makes comparisons between differently compiled programs fragile.
  """
  from vqa_jax.families import losses  # pylint: disable=g-import-not-at-top
  noise = 1.0 + 0.1 * jax.random.normal(rng, batch["label"].shape)
  pred = (batch["video"] @ params["backbone"]["kernel"] + params["head"]["bias"]) * noise
  return losses.plcc_loss(pred, batch["label"]), pred


def linear_problem(seed: int = 0):
  """(params, batch, tx) for `linear_loss`: 5 features, 8 examples, AdamW."""
  import optax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  params = {"backbone": {"kernel": jnp.array(rng.normal(size=5), jnp.float32)},
            "head": {"bias": jnp.zeros((), jnp.float32)}}
  x = rng.normal(size=(8, 5)).astype(np.float32)
  batch = {"video": jnp.array(x), "label": jnp.array(x @ np.arange(5.0) + 0.1 * rng.normal(size=8),
                                                     jnp.float32)}
  tx = optax.adamw(1e-2, weight_decay=0.05)
  return params, batch, tx


class ManualClock:
  """A clock that moves only when a test moves it (`clock.now += seconds`)."""

  def __init__(self, now: float = 100.0):
    self.now = now

  def __call__(self) -> float:
    return self.now


# ---------------------------------------------------------------- the AWP reference, in numpy

AWP_EPS = 1e-6  # the reference's e (perturb.RELATIVE_EPS), written again


def np_awp_step(w: np.ndarray, g: np.ndarray, size: float) -> np.ndarray:
  """The reference's AWP step of one tensor: size·‖w‖ along g (Frobenius norms)."""
  return size * g / (np.linalg.norm(g) + AWP_EPS) * (np.linalg.norm(w) + AWP_EPS)


def np_awp_project(w: np.ndarray, delta: np.ndarray, gamma: float) -> np.ndarray:
  """δ mapped into w's feasible set: the ball ‖δ‖ ≤ γ(‖w‖ + e), then the box |δ| ≤ γ|w|."""
  radius = gamma * (np.linalg.norm(w) + AWP_EPS)
  norm = np.linalg.norm(delta)
  ball = delta * (radius / norm if norm > radius else 1.0)
  return np.clip(ball, -gamma * np.abs(w), gamma * np.abs(w))


def np_awp_delta(w: np.ndarray, g: np.ndarray, gamma: float) -> np.ndarray:
  """One AWP step of length γ along g, projected: the reference's single ascent step."""
  return np_awp_project(w, np_awp_step(w, g, gamma), gamma)
