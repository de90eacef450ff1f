"""SAMA's IQA sampler (two scales mixed by a window checkerboard) against a hand computation."""

import cv2
import numpy as np

from vqa_jax.data.sampling import sama_iqa


def test_centred_sama_iqa_fragments_by_hand():
  image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
  got = sama_iqa.sample_fragments(image, grid=2, patch=16)
  assert got.shape == (32, 32, 3) and got.dtype == np.uint8
  # ratio = min(300, 400) / 32 = 9.375. Native: cells 150 x 200, centred offsets
  # int(0.5 * (150 - 16)) = 67 and int(0.5 * (200 - 16)) = 92.
  native = {(i, j): image[150 * i + 67:150 * i + 83, 200 * j + 92:200 * j + 108]
            for i in range(2) for j in range(2)}
  # Scale 1 / ratio: (round(300 / 9.375), round(400 / 9.375)) = (32, 43); cells 16 x 21,
  # offsets int(0.5 * 0) = 0 and int(0.5 * (21 - 16)) = 2; origins min(21 j, 43 - 16).
  scaled_image = cv2.resize(image, (43, 32), interpolation=cv2.INTER_LINEAR)
  scaled = {(i, j): scaled_image[16 * i:16 * i + 16, min(21 * j, 27) + 2:min(21 * j, 27) + 18]
            for i in range(2) for j in range(2)}
  for (i, j) in native:
    expected = native[i, j] if (i + j) % 2 == 0 else scaled[i, j]  # window checkerboard
    np.testing.assert_array_equal(got[16 * i:16 * i + 16, 16 * j:16 * j + 16], expected)


def test_random_fractions_are_shared_by_both_scales():
  image = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
  got = sama_iqa.sample_fragments(image, grid=2, patch=16, rng=np.random.default_rng(5))
  # The cell fractions: 2x2 for h, then 2x2 for w, from the same generator stream.
  u_h, u_w = np.random.default_rng(5).random((2, 1, 2, 2))[:, 0]
  top, left = int(u_h[0, 0] * (48 - 16)), int(u_w[0, 0] * (64 - 16))
  np.testing.assert_array_equal(got[:16, :16], image[top:top + 16, left:left + 16])
  # Block (0, 1) is scaled (ratio 3, image 32 x 43): cell 16 x 21, offset int(u * 5) in w.
  scaled_image = cv2.resize(image, (43, 32), interpolation=cv2.INTER_LINEAR)
  left = min(21, 27) + int(u_w[0, 1] * 5)
  np.testing.assert_array_equal(got[:16, 16:], scaled_image[:16, left:left + 16])


def test_sampling_method_sama_iqa_reads_an_image_file(tmp_path):
  from vqa_jax.data.sampling import clip_sampler  # pylint: disable=g-import-not-at-top
  image = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
  path = str(tmp_path / "x.png")
  cv2.imwrite(path, image[..., ::-1])  # the file is BGR; decoding returns RGB
  cfg = dict(method="sama_iqa", clip_len=1, frame_interval=1, grid=2, patch=16)
  clips = clip_sampler.sample_clips(path, cfg, num_clips=1)
  assert clips.shape == (1, 1, 32, 32, 3)
  np.testing.assert_array_equal(clips[0, 0], sama_iqa.sample_fragments(image, grid=2, patch=16))


def test_sampling_method_sama_iqa_needs_single_frames():
  from vqa_jax.config import validation  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="clip_len must be 1"):
    validation.check_sampling(dict(method="sama_iqa", clip_len=2, frame_interval=1, grid=2, patch=16))
