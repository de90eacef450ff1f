"""Test setup: 8 simulated CPU devices (set before jax is imported) and the ../shared fixtures."""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # pylint: disable=g-import-not-at-top

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


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
