"""SimpleVQA's frames (paper §6.3): one frame per second, short side resized, a square crop each.

`sampling.method = 'frames_1fps'`. As upstream SimpleVQA's frame extraction and data loader:

* Temporal: with r = round(fps) (at least 1) the video's key frames are 0, r, 2r, ... (every frame
  whose index is a multiple of r, i.e. ceil(N / r) of them); the first `clip_len` are used, and a
  video with fewer repeats its last key frame: frame t is min(t, (N - 1) // r) * r.
* Spatial: each frame is resized with OpenCV bilinear so that its short side is `short_side` (520)
  and its long side int(short_side / short * long) (upstream's arithmetic); then a `crop` x `crop`
  (448) square is cut, at a uniform random position drawn independently for EVERY frame in
  training (upstream applies torchvision's RandomCrop to each frame separately) and at the centre
  int(round((side - crop) / 2)) (torchvision's CenterCrop) at evaluation.

The frames are RGB uint8 on 0-255; the model applies the ImageNet mean/std. Upstream stores the
resized key frames as PNG and reads them back; here they are decoded and resized on the fly.
"""

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from vqa_jax.config import validation
from vqa_jax.config.config_base import sampling_fields
from vqa_jax.data import augment as augment_lib
from vqa_jax.data import video_io


def frame_indices(num_frames: int, fps: float, count: int) -> np.ndarray:
  """The `count` frame indices at one per second: min(t, (N - 1) // r) * r with r = round(fps)."""
  if num_frames < 1 or count < 1:
    raise ValueError(f"need num_frames >= 1 and count >= 1, got {num_frames} and {count}")
  rate = max(1, int(round(fps)))
  last_key = (num_frames - 1) // rate
  return np.minimum(np.arange(count, dtype=np.int64), last_key) * rate


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
  """(height, width) with the short side `short_side`, the long int(short_side / short * long)."""
  if height > width:
    return int(short_side / width * height), short_side
  return short_side, int(short_side / height * width)


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
  """One (H, W, 3) frame resized (OpenCV bilinear) to `resized_size`."""
  height, width = resized_size(frame.shape[0], frame.shape[1], short_side)
  if (height, width) == frame.shape[:2]:
    return frame
  return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def crop_origins(height: int, width: int, crop: int, count: int,
                 rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
  """(tops, lefts) of `count` crops: uniform in [0, side - crop] each with `rng`, else centred."""
  if crop > min(height, width):
    raise ValueError(f"crop {crop} is larger than the resized frame {height}x{width}")
  if rng is None:
    return (np.full(count, int(round((height - crop) / 2.0)), np.int64),
            np.full(count, int(round((width - crop) / 2.0)), np.int64))
  tops = rng.integers(0, height - crop + 1, size=count, dtype=np.int64)
  lefts = rng.integers(0, width - crop + 1, size=count, dtype=np.int64)
  return tops, lefts


def _decode(path: str, count: int) -> tuple[np.ndarray, np.ndarray]:
  """The distinct key frames and, per output frame, its position among them (one file open)."""
  return video_io.read_sampled_frames(
      path, lambda info: frame_indices(info.num_frames, info.fps, count))


def sample_clips(path: str, sampling: Mapping[str, Any], num_clips: int,
                 rng: np.random.Generator | None = None, augment: str = "none") -> np.ndarray:
  """uint8 (num_clips, clip_len, crop, crop, 3): `clip_len` frames at 1 fps, cropped.

  Each clip takes the same frames; with `rng` every frame of every clip gets its own random crop,
  without it all are centred (so the clips are identical). `augment` ('none' or 'autoaugment',
  needs `rng`) transforms the decoded frames first, one draw for the video.
  """
  sampling = sampling_fields(sampling)
  validation.check_frames_1fps(sampling)
  count, crop = int(sampling["clip_len"]), int(sampling["crop"])
  frames, frame_index = _decode(path, count)
  if augment != "none":
    if rng is None:
      raise ValueError(f"augment={augment!r} needs a random generator (training only)")
    frames = augment_lib.augment_clip(frames, rng, augment)
  resized = [resize_short_side(f, int(sampling["short_side"])) for f in frames]
  height, width = resized[0].shape[:2]
  out = np.empty((num_clips, count, crop, crop, 3), np.uint8)
  for clip in range(num_clips):
    tops, lefts = crop_origins(height, width, crop, count, rng)
    for t in range(count):
      out[clip, t] = resized[frame_index[t]][tops[t]:tops[t] + crop, lefts[t]:lefts[t] + crop]
  return out
