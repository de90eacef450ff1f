"""Test helpers: small lossless (FFV1) videos written with OpenCV."""

import pathlib

import cv2
import numpy as np


def write_video(path: pathlib.Path, frames: np.ndarray, fps: float = 10.0) -> str:
  """Writes RGB (T, H, W, 3) or gray (T, H, W) uint8 frames losslessly (FFV1); returns the path."""
  is_color = frames.ndim == 4
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height),
                           isColor=is_color)
  assert writer.isOpened(), f"cannot write {path}"
  for frame in frames:
    writer.write(frame[..., ::-1] if is_color else frame)  # RGB -> BGR for OpenCV.
  writer.release()
  return str(path)


def random_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
  """Random RGB uint8 frames (num_frames, height, width, 3)."""
  return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), np.uint8)
