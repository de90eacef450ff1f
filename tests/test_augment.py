"""AutoAugment for clips (vqa_jax/data/augment.py): ops against hand values, one draw per clip."""

import numpy as np
import pytest

from vqa_jax.data import augment


def clip(values, height=4, width=4):
  """(T, H, W, 3) uint8 frames, frame t filled with values[t]."""
  values = np.asarray(values, np.uint8)
  return np.ascontiguousarray(np.broadcast_to(values[:, None, None, None],
                                              (len(values), height, width, 3)))


def test_policy_table_is_torchvision_imagenet():
  assert len(augment.IMAGENET_POLICY) == 25
  assert augment.IMAGENET_POLICY[0] == (("Posterize", 0.4, 8), ("Rotate", 0.6, 9))
  assert augment.IMAGENET_POLICY[-1] == (("Equalize", 0.8, None), ("Equalize", 0.6, None))
  np.testing.assert_array_equal(augment.MAGNITUDES["Posterize"][0], [8, 8, 7, 7, 6, 6, 5, 5, 4, 4])
  assert augment.MAGNITUDES["Rotate"][0][9] == 30.0 and augment.MAGNITUDES["Solarize"][0][5] == (
      255.0 * 4 / 9)


def test_pointwise_ops_by_hand():
  frames = clip([0, 100, 200, 255])
  np.testing.assert_array_equal(augment.posterize(frames, 4)[:, 0, 0, 0], [0, 96, 192, 240])
  np.testing.assert_array_equal(augment.solarize(frames, 128)[:, 0, 0, 0], [0, 100, 55, 0])
  np.testing.assert_array_equal(augment.invert(frames)[:, 0, 0, 0], [255, 155, 55, 0])
  # torchvision's gray weights sum to 0.9999, so the floored gray of (v, v, v) is v - 1 (v >= 1).
  # Saturation 1.9: 1.9 v - 0.9 (v - 1) = v + 0.9, truncated to v. Contrast 0.5 around the
  # frame's mean gray: 0.5 v + 0.5 (v - 1) = v - 0.5, truncated to v - 1.
  np.testing.assert_array_equal(augment.color(frames, 0.9), frames)
  np.testing.assert_array_equal(augment.contrast(frames, -0.5)[:, 0, 0, 0], [0, 99, 199, 254])


def test_color_and_contrast_blend_by_hand():
  frame = np.array([[[[200, 100, 0]]]], np.uint8)  # one pixel; gray = floor(59.78 + 58.7) = 118
  np.testing.assert_array_equal(augment.color(frame, 0.5)[0, 0, 0], [241, 91, 0])
  # 1.5 * (200, 100, 0) - 0.5 * 118 = (241, 91, -59) -> clipped to 0.
  two = np.array([[[[10, 10, 10], [30, 30, 30]]]], np.uint8)  # grays 9, 29: mean 19
  np.testing.assert_array_equal(augment.contrast(two, 1.0)[0, 0, :, 0], [1, 41])  # 2 x - 19


def test_autocontrast_and_equalize_per_frame_and_channel():
  frames = np.zeros((2, 1, 4, 3), np.uint8)
  frames[0, 0, :, 0] = [50, 100, 150, 100]
  frames[1, 0, :, 0] = [0, 10, 20, 30]
  out = augment.autocontrast(frames)
  np.testing.assert_array_equal(out[0, 0, :, 0], [0, 127, 255, 127])  # (x - 50) * 2.55, truncated
  np.testing.assert_array_equal(out[1, 0, :, 0], [0, 85, 170, 255])
  np.testing.assert_array_equal(out[..., 1], frames[..., 1])  # constant channel unchanged
  # Equalize (PIL): hist {0: 1, 10: 1, 20: 1, 30: 1}, step = 3 // 255 = 0 -> unchanged; with 600
  # pixels: values 0 (x300), 200 (x300): step = 300 // 255 = 1, lut[200] = (300 + 0) // 1 = 255.
  np.testing.assert_array_equal(augment.equalize(frames), frames)
  big = np.zeros((1, 20, 30, 3), np.uint8)
  big[0, 10:] = 200
  out = augment.equalize(big)
  assert set(np.unique(out).tolist()) == {0, 255}


def test_geometric_ops():
  frame = np.arange(25, dtype=np.uint8).reshape(1, 5, 5, 1).repeat(3, axis=-1)
  np.testing.assert_array_equal(augment.rotate(frame, 0.0), frame)
  rotated = augment.rotate(frame, 90.0)[0, ..., 0]  # counter-clockwise quarter turn
  np.testing.assert_array_equal(rotated, np.rot90(frame[0, ..., 0]))
  sheared = augment.shear_x(frame, 1.0)[0, ..., 0]  # output (x, y) <- input (x + y, y), fill 0
  np.testing.assert_array_equal(sheared[2], [12, 13, 14, 0, 0])
  np.testing.assert_array_equal(sheared[0], frame[0, 0, :, 0])


def test_one_draw_applies_identically_to_every_frame():
  rng = np.random.default_rng(0)
  base = np.random.default_rng(1).integers(0, 256, (1, 12, 16, 3), np.uint8)
  frames = np.repeat(base, 5, axis=0)
  seen_ops = set()
  for _ in range(60):
    out = augment.augment_clip(frames, rng, "autoaugment")
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.all(out == out[:1])
  for seed in range(200):
    seen_ops.update(name for name, _ in augment.draw_ops(np.random.default_rng(seed)))
  assert seen_ops == set(augment.OPS)
  np.testing.assert_array_equal(augment.augment_clip(frames, rng, "none"), frames)
  with pytest.raises(ValueError, match="augment policy must be one of"):
    augment.augment_clip(frames, rng, "randaugment")


def test_draws_are_reproducible():
  assert (augment.draw_ops(np.random.default_rng(3)) == augment.draw_ops(np.random.default_rng(3)))
