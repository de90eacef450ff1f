"""One synthetic video: its content rendered with its distortions, written as Motion-JPEG .avi.

Codec: Motion-JPEG in .avi written by OpenCV's built-in writer (`cv2.CAP_OPENCV_MJPEG`) with
`VIDEOWRITER_PROP_QUALITY` = `SyntheticSpec.codec_quality` (95), set after opening (as an open
parameter it is rejected by the FFmpeg writer and ignored by the built-in one). Round trip of
pristine 128x160x32 clips (3 of each content kind), luma PSNR mean (min) and size:
  built-in MJPG q95  43.0 (42.3) dB, ~400 KB   <- chosen
  FFmpeg mp4v        37.2 (35.8) dB,  ~58 KB   (no working quality control: neither the open
                                               parameter nor OPENCV_FFMPEG_WRITER_OPTIONS acts)
  FFmpeg MJPG        37.7 (36.7) dB, ~220 KB
  FFV1               lossless,       ~760 KB
For scale, noise at s = 0.1 alone is ~38 dB, so mp4v's artefacts would rival the weakest
distortions. Colour PSNR (~35 dB) is bounded by 4:2:0 chroma subsampling, as in real video.
Files decode with any cv2.VideoCapture (FFmpeg backend), exact in frame size and count.
"""

from typing import Mapping

import cv2
import numpy as np

from vqa_jax.data import video_io
from vqa_jax.data.synthetic import content as content_lib
from vqa_jax.data.synthetic import distortions as distortions_lib
from vqa_jax.data.synthetic import metadata


def render_video(content: str, distortions: Mapping[str, float], *, height: int, width: int,
                 num_frames: int, seed: int) -> np.ndarray:
  """Renders `content` (fixed by `seed`) with the given distortions: uint8 (T, H, W, 3) BGR."""
  if content not in content_lib.CONTENT_RENDERERS:
    raise ValueError(
        f"Unknown content {content!r}; known: {sorted(content_lib.CONTENT_RENDERERS)}")
  metadata.mos_from_strengths(distortions)  # Validates names and strengths.
  render = content_lib.CONTENT_RENDERERS[content]
  frames = render(content_lib.render_rng(seed), height, width, num_frames)
  noise_rng = np.random.default_rng([seed, 2])
  for name in distortions_lib.DISTORTION_ORDER:
    if name in distortions:
      frames = distortions_lib.DISTORTIONS[name](frames, float(distortions[name]), noise_rng)
  return distortions_lib.to_uint8(frames)


def write_video(path: str, frames: np.ndarray, fps: float, quality: int = 95) -> None:
  """Writes uint8 (T, H, W, 3) BGR frames as Motion-JPEG .avi at the given JPEG quality."""
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(video_io.opencv_name(path), cv2.CAP_OPENCV_MJPEG,
                           cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
  try:
    if not writer.isOpened():
      raise OSError(f"cv2.VideoWriter could not open {path}")
    if not writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality):
      raise OSError(f"cv2.VideoWriter ignored quality {quality} for {path}")
    for frame in frames:
      writer.write(np.ascontiguousarray(frame))
  finally:
    writer.release()

