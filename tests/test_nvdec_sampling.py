"""One sampling definition: the device fragment cutter equals the numpy sampler bit for bit."""

import jax
import ml_collections
import numpy as np
import pytest
from tests.video_files import coordinate_frames
from tests.video_files import random_frames

from vqa_jax.config import validation
from vqa_jax.data.decoders import device_fragments
from vqa_jax.data.sampling import fragments


@pytest.mark.parametrize("shape,grid,patch,aligned,frame_index,seed", [
    ((6, 40, 56), 2, 8, 4, [0, 2, 4, 5, 1, 3, 3, 0], 0),    # repeats, two chunks
    ((5, 33, 47), 3, 7, 2, [4, 3, 2, 1, 0, 0], 1),          # odd sizes, three chunks
    ((4, 32, 32), 4, 8, 8, [0, 1, 2, 3, 0, 1, 2, 3], None),  # cells == patch: offsets 0; centred
    ((3, 70, 50), 2, 16, 3, [2, 2, 2], 7),
])
def test_device_cutter_equals_numpy_sampler(shape, grid, patch, aligned, frame_index, seed):
  frames = random_frames(*shape, seed=3)
  rng = lambda: None if seed is None else np.random.default_rng(seed)
  expected = fragments.sample_fragments(frames, grid, patch, aligned, rng(), frame_index)
  cut = device_fragments.cut_fragments(jax.device_put(frames), np.asarray(frame_index), grid,
                                       patch, aligned, rng())
  assert isinstance(cut, jax.Array) and cut.dtype == np.uint8
  np.testing.assert_array_equal(np.asarray(cut), expected)


def test_device_cutter_takes_each_patch_where_patch_corners_say():
  # Pixel (t, y, x) holds (y, x, t): every output patch names its source corner and frame.
  frames = coordinate_frames(4, 48, 64)
  cut = np.asarray(device_fragments.cut_fragments(jax.device_put(frames), np.array([3, 1]), 2, 8,
                                                  1, np.random.default_rng(5)))
  tops, lefts = fragments.patch_corners(48, 64, 2, 2, 8, 1, np.random.default_rng(5))
  for t, source in enumerate([3, 1]):
    for i, j in np.ndindex(2, 2):
      block = cut[t, 8 * i:8 * i + 8, 8 * j:8 * j + 8]
      assert tuple(block[0, 0]) == (tops[t, i, j], lefts[t, i, j], source)


def test_device_cutter_refuses_frames_that_need_upsampling():
  with pytest.raises(ValueError, match="upsampled on the CPU"):
    device_fragments.cut_fragments(jax.device_put(random_frames(2, 12, 40)), np.array([0, 1]),
                                   2, 8, 2)


def _config(**data):
  c = ml_collections.ConfigDict({"decoder": "opencv", "nvdec_share": 0.6, "nvdec_threads": 8,
                                 "augment": "none"})
  c.update(data)
  return c


@pytest.mark.parametrize("data,method,message", [
    ({"decoder": "gpu"}, "fragments", "data.decoder must be one of"),
    ({"decoder": "hybrid", "nvdec_share": 1.0}, "fragments", r"nvdec_share must be in \(0, 1\)"),
    ({"decoder": "nvdec", "nvdec_threads": 0}, "fragments", "nvdec_threads must be positive"),
    ({"decoder": "nvdec"}, "sama", "takes sampling.method in"),
    ({"decoder": "hybrid", "augment": "autoaugment"}, "fragments", "takes data.augment='none'"),
])
def test_decoder_config_is_validated(data, method, message):
  with pytest.raises(ValueError, match=message):
    validation.check_decoder(_config(**data), {"method": method})


@pytest.mark.parametrize("decoder", ["opencv", "nvdec", "hybrid"])
def test_valid_decoder_configs_pass(decoder):
  validation.check_decoder(_config(decoder=decoder), {"method": "fragments_t"})


def test_full_config_validation_checks_the_decoder():
  from tests.helpers import load_config  # pylint: disable=g-import-not-at-top
  config = load_config("smoke")
  assert config.data.decoder == "opencv"
  validation.validate(config)
  config.data.decoder = "hybrid"
  config.data.nvdec_share = 0.0
  with pytest.raises(ValueError, match="nvdec_share"):
    validation.validate(config)
