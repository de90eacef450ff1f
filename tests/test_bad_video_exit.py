"""`on_bad_video='error'`: a video that opens but does not decode stops `vqa_jax.main` at once,
with status 1 and the error naming it last: no abort at interpreter shutdown, no hang.

The reference loader's failure: the tf.data iterator outlived the error and its C++
destructor ran during interpreter shutdown (SIGABRT, or a hang). Runs go in parallel, each under a
timeout; a hang fails the test instead of stalling the suite.
"""

import pathlib
import subprocess
import sys

import pytest
from tests.helpers import REPO_ROOT
from tests.video_files import labelled_videos
from tests.video_files import random_frames
from tests.video_files import write_video

pytestmark = pytest.mark.integration  # subprocess CLI runs

# The smoke config on the label files (loaded the way the tests load configs: config_files.load).
CONFIG = '''
import ml_collections

from vqa_jax.config import config_files


def get_config():
  c = config_files.load("smoke")
  c.data.source = "label_files"
  c.data.label_files = ml_collections.ConfigDict({{"train": {train!r}, "test": {test!r}}})
  c.data.eval_splits = ("test",)
  c.data.loader = {loader!r}
  c.data.workers = 2
  return c
'''


def undecodable_mkv(path: pathlib.Path) -> str:
  """A Matroska file cut to its first 1%: it opens and lists 30 frames, but none decodes."""
  whole = pathlib.Path(write_video(path.with_suffix(".whole.mkv"), random_frames(30, 64, 80)))
  data = whole.read_bytes()
  path.write_bytes(data[:len(data) // 100])
  whole.unlink()
  return str(path)


@pytest.fixture(scope="module")
def label_files(tmp_path_factory):
  """(train spec with 7 good videos and the undecodable one, test spec, the bad video's path)."""
  root = tmp_path_factory.mktemp("bad_exit")
  good = labelled_videos(root, 7)
  bad = undecodable_mkv(root / "cut.mkv")
  lines = [f"{pathlib.Path(e.path).name}, 0, 0, {e.mos}\n" for e in good]
  (root / "train.txt").write_text("".join(lines) + "cut.mkv, 0, 0, 3.0\n")
  (root / "test.txt").write_text("".join(lines[:4]))
  return f"{root}/train.txt:{root}", f"{root}/test.txt:{root}", bad


def run_in_parallel(tmp_path, label_files, loader: str, runs: int) -> list:
  """Starts `runs` trainings at once (batch 8 = every video in step 1); their CompletedProcess."""
  train, test, _ = label_files
  config = tmp_path / f"bad_{loader}.py"
  config.write_text(CONFIG.format(train=train, test=test, loader=loader))
  procs = [subprocess.Popen([sys.executable, "-m", "vqa_jax.main", f"--config={config}",
                             f"--workdir={tmp_path / f'{loader}_{i}'}"], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
           for i in range(runs)]
  results = []
  for proc in procs:
    try:
      _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
      for other in procs:
        other.kill()
      pytest.fail(f"a {loader} run hung after the decode error")
    results.append((proc.returncode, stderr))
  return results


def check(results, bad: str) -> None:
  """Each run exited 1 (not an abort) with the VideoDecodeError naming `bad` as its last line."""
  for rc, stderr in results:
    assert rc == 1, stderr[-3000:]
    assert "terminate called" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("vqa_jax.data.video_io.VideoDecodeError:") and bad in last, last


@pytest.mark.parametrize("loader,runs", [("tf_data", 3), ("grain", 1)])
def test_bad_video_exits_with_its_error(tmp_path, label_files, loader, runs):
  check(run_in_parallel(tmp_path, label_files, loader, runs), label_files[2])


@pytest.mark.slow
def test_ten_tf_data_runs_in_a_row_exit_with_the_error(tmp_path, label_files):
  check(run_in_parallel(tmp_path, label_files, "tf_data", 10), label_files[2])
