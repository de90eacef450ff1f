"""Test setup: 8 simulated CPU devices (set before jax is imported) and the fixtures shared by
several test modules (plain helpers: tests/helpers.py, tests/video_files.py)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pathlib  # pylint: disable=g-import-not-at-top,g-bad-import-order

import pytest  # pylint: disable=g-import-not-at-top

from tests.helpers import SHARED_DIR  # pylint: disable=g-import-not-at-top


@pytest.fixture
def shared_dir() -> pathlib.Path:
  """The ../shared folder beside the checkout; skips the test when it is absent."""
  if not (SHARED_DIR / "videos").is_dir():
    pytest.skip("../shared/videos is not available")
  return SHARED_DIR


@pytest.fixture(scope="module")
def fast_compile():
  """Cheaper XLA compiles (jax_disable_most_optimizations) for a test module; restored afterwards."""
  import jax  # pylint: disable=g-import-not-at-top
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture(scope="module")
def good_and_bad_videos(tmp_path_factory):
  """(five good labelled videos, {kind: path} of three bad files: empty, text, truncated .mp4)."""
  from tests import video_files  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("bad")
  good = video_files.labelled_videos(root, 5)
  (root / "empty.mp4").write_bytes(b"")
  (root / "text.mp4").write_text("this is not a video\n" * 50)
  mp4 = video_files.write_mp4(root / "whole.mp4", video_files.random_frames(30, 24, 32))
  bad = {"empty": str(root / "empty.mp4"), "text": str(root / "text.mp4"),
         "truncated": video_files.truncated_copy(mp4, root / "truncated.mp4")}
  return good, bad


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> str:
  """The tiny synthetic dataset (videos + label files), generated once for the module."""
  from vqa_jax.config.specs import SyntheticSpec  # pylint: disable=g-import-not-at-top
  from vqa_jax.data.synthetic import dataset  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("synthetic"))
  dataset.generate(root, SyntheticSpec.tiny(), num_workers=1)
  return root
