"""`python -m vqa_jax.show_fragments` and its library: the eval fragments, npy and contact sheet."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from tests.helpers import REPO_ROOT
from tests.helpers import load_config
from tests.video_files import random_frames
from tests.video_files import write_video

from vqa_jax.data import show_fragments as inspect
from vqa_jax.data.sampling import clip_sampler

DEMO = REPO_ROOT / "configs" / "demo.py"


def demo_sampling():
  """config.sampling of configs/demo.py."""
  return load_config(DEMO).sampling


def test_contact_sheet_layout():
  fragments = random_frames(6, 5, 5).reshape(2, 3, 5, 5, 3)
  sheet = inspect.contact_sheet(fragments, gap=2)
  assert sheet.shape == (2 * 5 + 2, 3 * 5 + 2 * 2, 3)
  np.testing.assert_array_equal(sheet[7:12, 14:19], fragments[1, 2])
  assert np.all(sheet[5:7] == 255)


@pytest.mark.integration
def test_cli_writes_eval_fragments_and_png(tmp_path):
  video = write_video(tmp_path / "clip.mkv", random_frames(20, 48, 72))
  cfg = demo_sampling()
  side, clips, frames = cfg.grid * cfg.patch, cfg.num_clips_eval, cfg.clip_len
  out = tmp_path / "out"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, "-m", "vqa_jax.show_fragments", video,
                  f"--config={DEMO}", f"--out={out}"],
                 check=True, cwd=REPO_ROOT, env=env, capture_output=True)
  got = np.load(out / "fragments.npy")
  expected = clip_sampler.sample_clips(video, cfg, clips)
  assert got.dtype == np.uint8 and got.shape == (clips, frames, side, side, 3)
  np.testing.assert_array_equal(got, expected)
  png = cv2.imread(str(out / "fragments.png"))
  gap = inspect.GAP
  assert png.shape == (clips * (side + gap) - gap, frames * (side + gap) - gap, 3)
  np.testing.assert_array_equal(png[..., ::-1], inspect.contact_sheet(expected))


@pytest.mark.integration
def test_cli_names_a_bad_input_in_one_line(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", "vqa_jax.show_fragments", str(tmp_path),
                         f"--config={DEMO}", f"--out={tmp_path / 'out'}"],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1] == f"inspect: {tmp_path}: is a folder, not a file"
  assert "Traceback" not in proc.stderr
