"""SimpleVQA's one-second chunks of a video: the input of its SlowFast motion features (§6.3).

A video is read with OpenCV and cut into one-second chunks as the reference does: with
r = round(fps) and N frames, chunk i (i < max(1, N // r)) holds frames i*r .. i*r + 31, frames past
the end repeating the last one; a video with fewer than `motion.min_chunks` chunks repeats its last
chunk (8; 20 for YouTube-UGC in the reference). Frames are resized to `motion.resize` squared
(OpenCV INTER_AREA when shrinking, bilinear otherwise; the reference uses PIL's antialiased
bilinear, so features are close, not bit-identical).
"""

import cv2
import ml_collections
import numpy as np

from vqa_jax.data import video_io


def chunk_indices(num_frames: int, fps: float, chunk_len: int = 32,
                  min_chunks: int = 8) -> np.ndarray:
  """(chunks, chunk_len) frame indices of the reference's one-second chunks, padded as it pads."""
  if num_frames < 1:
    raise ValueError(f"a video needs at least one frame, got {num_frames}")
  rate = max(1, int(round(fps)))
  num_chunks = max(1, num_frames // rate)  # The reference fails on videos shorter than 1 s.
  starts = np.arange(num_chunks) * rate
  chunks = np.minimum(starts[:, None] + np.arange(chunk_len)[None, :], num_frames - 1)
  if num_chunks < min_chunks:
    chunks = np.concatenate([chunks, np.repeat(chunks[-1:], min_chunks - num_chunks, axis=0)])
  return chunks


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
  """(T, H, W, 3) uint8 -> (T, size, size, 3): INTER_AREA when shrinking, bilinear otherwise."""
  shrink = size < min(frames.shape[1:3])
  interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
  return np.stack([cv2.resize(f, (size, size), interpolation=interpolation) for f in frames])


def video_chunks(path: str, motion_cfg: ml_collections.ConfigDict) -> np.ndarray:
  """The uint8 chunks (chunks, chunk_len, size, size, 3) of the video at `path`."""
  chunk_len, size = int(motion_cfg.chunk_len), int(motion_cfg.resize)
  # One open; re-sampled from the decodable frames when the container over-reports its count.
  frames, inverse = video_io.read_sampled_frames(
      path, lambda info: chunk_indices(info.num_frames, info.fps, chunk_len,
                                       int(motion_cfg.min_chunks)))
  return resize_frames(frames, size)[inverse].reshape(-1, chunk_len, size, size, 3)
