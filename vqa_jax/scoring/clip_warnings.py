"""Warnings on a scored video's row: input the test protocol had to stretch, and their counts.

Three kinds, each a sentence in the row's `warning` (joined by '; ' when several apply):

* `decoded_short`: the video decoded fewer frames than its container lists (`video_io.SHORTFALLS`;
  the clips were re-sampled from the frames that decode);
* `short_clip`: the video is shorter than one clip: even a single clip of `clip_len` frames
  `frame_interval` apart does not fit, so its frames run past the end (FAST-VQA's sampler wraps
  round to frame 0, SAMA's repeats the last frame), e.g. 4 frames under clip_len 4 at interval 2
  (a clip spans 7 frames), or fewer than 63 frames under FAST-VQA-B's 32 at interval 2. A video
  that holds a clip but not all `num_clips_eval` of them side by side (the reference protocol's
  last clip wraps on e.g. 240 frames) is the protocol working as designed, not warned about;
* `upsampled`: the short side is below the fragment grid (grid * patch pixels), so the frames
  were upsampled before the fragments were cut (e.g. a 16x16 video).

The frame count and size come from the container (`video_io.probe`, one more opening, ~1 ms), or
the decoded count after a shortfall. Images are not checked for `short_clip` (they are 1-frame
clips by design), and SimpleVQA's 1-fps frames (`frames_1fps`, resized to `short_side` whatever
their size) for neither `short_clip` nor `upsampled`.
"""

from __future__ import annotations

import collections
from typing import Any, Mapping

import numpy as np

from vqa_jax.config import choices
from vqa_jax.config.config_base import sampling_fields
from vqa_jax.data.sampling import clip_sampler
from vqa_jax.data import video_io

DECODED_SHORT, SHORT_CLIP, UPSAMPLED = "decoded_short", "short_clip", "upsampled"
SUMMARIES = {
    DECODED_SHORT: "decoded fewer frames than their container lists",
    SHORT_CLIP: "are shorter than a clip (its frames wrap round)",
    UPSAMPLED: "are smaller than the fragment grid (upsampled)",
}


def shorter_than_a_clip(num_frames: int, sampling: Mapping[str, Any]) -> bool:
  """Whether one clip of `sampling` runs past the end of a `num_frames`-frame video: its frame
  indices, sampled as the only clip, are not strictly increasing (wrapped round or clamped)."""
  return bool(np.any(np.diff(clip_sampler.clip_indices(num_frames, sampling, 1)) <= 0))


def shortfall_warnings(path: str) -> dict[str, str]:
  """{'decoded_short': sentence} when `path` decoded fewer frames than its container lists."""
  warning = video_io.SHORTFALLS.warning(path)
  return {DECODED_SHORT: warning} if warning else {}


def video_warnings(path: str, sampling: Mapping[str, Any], scored: bool = True) -> dict[str, str]:
  """{kind: sentence} of `path` under the test protocol (module docstring); {} for a clean video.
  Only `decoded_short` for a video that was not scored (it failed) and under frames_1fps."""
  found = shortfall_warnings(path)
  shortfall = video_io.SHORTFALLS.get(path)
  sampling = sampling_fields(sampling)
  if not scored or sampling["method"] == choices.FRAMES_1FPS:
    return found
  try:
    info = video_io.probe(path)
  except (video_io.VideoDecodeError, OSError):
    return found  # it was scored a moment ago: changed meanwhile, nothing to say about its clips
  num_frames = shortfall[1] if shortfall else info.num_frames
  clip_len, interval = sampling["clip_len"], sampling["frame_interval"]
  if not video_io.is_image(path) and shorter_than_a_clip(num_frames, sampling):
    found[SHORT_CLIP] = (f"shorter than a clip: {num_frames} frames, a clip samples {clip_len} "
                         f"frames {interval} apart, so "
                         + ("it repeats the last frame" if sampling["method"] == "sama"
                            else "it wraps round to frame 0"))
  side = sampling["grid"] * sampling["patch"]
  if min(info.height, info.width) < side:
    found[UPSAMPLED] = (f"smaller than the fragment grid: {info.width}x{info.height}, upsampled "
                        f"to a short side of {side} pixels ({sampling['grid']} x "
                        f"{sampling['patch']})")
  return found


class Tally:
  """Counts the warnings of a scoring run by kind; `lines()` summarises them for stderr."""

  def __init__(self):
    self.counts: collections.Counter = collections.Counter()

  def count(self, found: dict[str, str]) -> dict[str, str]:
    """Counts the kinds in `found` ({kind: sentence}) and returns it."""
    self.counts.update(found.keys())
    return found

  def lines(self) -> list[str]:
    """One line per kind seen: 'N videos <what> (their rows have a 'warning')'."""
    return [f"{self.counts[kind]} videos {what} (their rows have a 'warning')"
            for kind, what in SUMMARIES.items() if self.counts[kind]]
