"""Warnings on a scored video's row: input the test protocol had to stretch, and their counts.

Three kinds, each a sentence in the row's `warning` (joined by '; ' when several apply):

* `decoded_short`: the video decoded fewer frames than its container lists (`video_io.SHORTFALLS`;
  the clips were re-sampled from the frames that decode);
* `short_clip`: a clip of the test protocol repeats frames because the video has too few
  (FAST-VQA's sampler wraps round to frame 0, SAMA's clamps to the last frame), e.g. 4 frames
  under clip_len 4 at frame_interval 2. A long video whose last clip wraps without repeating a
  frame (the reference protocol on e.g. 240 frames) is not warned about;
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
from vqa_jax.data import sampling as sampling_lib
from vqa_jax.data import video_io

DECODED_SHORT, SHORT_CLIP, UPSAMPLED = "decoded_short", "short_clip", "upsampled"
SUMMARIES = {
    DECODED_SHORT: "decoded fewer frames than their container lists",
    SHORT_CLIP: "have fewer frames than a clip samples (a clip repeats frames)",
    UPSAMPLED: "are smaller than the fragment grid (upsampled)",
}


def repeats_frames(num_frames: int, sampling: Mapping[str, Any], num_clips: int) -> bool:
  """Whether a test clip of `sampling` on a `num_frames`-frame video holds a frame twice.

  Centred offsets decide it for random ones too: offsets are 0 whenever a segment is no longer
  than a clip's span, and a longer segment never overflows.
  """
  clips = sampling_lib.clip_indices(num_frames, sampling, num_clips).reshape(num_clips, -1)
  return any(np.unique(clip).size < clip.size for clip in clips)


def shortfall_warnings(path: str) -> dict[str, str]:
  """{'decoded_short': sentence} when `path` decoded fewer frames than its container lists."""
  warning = video_io.SHORTFALLS.warning(path)
  return {DECODED_SHORT: warning} if warning else {}


def video_warnings(path: str, sampling: Mapping[str, Any], num_clips: int,
                   scored: bool = True) -> dict[str, str]:
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
  if not video_io.is_image(path) and repeats_frames(num_frames, sampling, num_clips):
    found[SHORT_CLIP] = (f"shorter than a clip: {num_frames} frames, a clip samples {clip_len} "
                         f"frames {interval} apart, so its frames repeat")
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
