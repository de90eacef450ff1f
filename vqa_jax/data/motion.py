"""SimpleVQA's precomputed motion features (paper §6.3), as `simple_vqa_features` writes them.

`data.motion_dir` holds `index.json` ({absolute video path: file relative to motion_dir}) and one
float32 (chunks, D) .npy per video (chunk i = second i, padded to `motion.min_chunks`). A video's
`motion` input is the first `num_frames` rows, one per frame of `frames_1fps` (upstream reads
features 0 .. 7 beside frames 0 .. 7).

A video whose features are missing from the index or the folder, or whose file has fewer rows or
another width than needed, is a problem: `check` lists all of them up front (like
`element_plan.check_videos_exist`), and `load` raises a `VideoDecodeError` naming the video and
the feature file, so the pipelines' `on_bad_video` policy applies to it as to a bad video.
"""

from __future__ import annotations

import json
import os
import threading

from absl import logging
import numpy as np

from vqa_jax.data import labels
from vqa_jax.data import video_io

INDEX_FILE = "index.json"  # written by scoring/motion_features.py, which imports it from here
_MAX_LISTED = 20


class MotionFeatures:
  """The motion features of the videos indexed in `motion_dir`: (num_frames, dim) per video."""

  def __init__(self, motion_dir: str, num_frames: int, dim: int):
    index_path = os.path.join(motion_dir, INDEX_FILE)
    if not os.path.isfile(index_path):
      raise FileNotFoundError(
          f"{index_path}: no motion-feature index; precompute the features with "
          f"`python -m vqa_jax.simple_vqa_features --config=CONFIG --out={motion_dir}`")
    try:
      with open(index_path, encoding="utf-8") as f:
        self._index = {os.path.abspath(k): v for k, v in json.load(f).items()}
    except (ValueError, AttributeError) as e:
      raise ValueError(f"{index_path}: not a JSON object of video path -> feature file "
                       f"({e})") from e
    self.motion_dir = motion_dir
    self.num_frames = int(num_frames)
    self.dim = int(dim)
    self._problems: dict[str, str | None] = {}
    self._lock = threading.Lock()

  def feature_file(self, video_path: str) -> str | None:
    """The feature file of a video, or None if the index does not list it."""
    name = self._index.get(os.path.abspath(video_path))
    return None if name is None else os.path.join(self.motion_dir, name)

  def _find_problem(self, video_path: str) -> str | None:
    """What is wrong with a video's feature file (reads only the .npy header), or None."""
    path = self.feature_file(video_path)
    if path is None:
      return f"no motion features in {os.path.join(self.motion_dir, INDEX_FILE)}"
    if not os.path.isfile(path):
      return f"motion features {path}: no such file"
    try:
      shape = np.load(path, mmap_mode="r").shape
    except (OSError, ValueError) as e:
      return f"motion features {path}: unreadable ({e})"
    if len(shape) != 2 or shape[0] < self.num_frames or shape[1] != self.dim:
      return (f"motion features {path}: shape {shape}, need at least ({self.num_frames}, "
              f"{self.dim})")
    return None

  def problem(self, video_path: str) -> str | None:
    """`_find_problem`, computed once per video."""
    with self._lock:
      if video_path in self._problems:
        return self._problems[video_path]
    found = self._find_problem(video_path)
    with self._lock:
      self._problems[video_path] = found
    return found

  def check(self, entries: list[labels.Entry], on_bad_video: str = "error") -> int:
    """Lists every entry whose features are unusable; raises with 'error', warns with 'skip'.

    Returns the number of such entries.
    """
    problems = [f"{e.path}: {p}" for e in entries if (p := self.problem(e.path)) is not None]
    if problems:
      listed = "\n  ".join(problems[:_MAX_LISTED])
      message = (f"{len(problems)} of {len(entries)} videos lack usable motion features (first "
                 f"{min(len(problems), _MAX_LISTED)} listed):\n  {listed}")
      if on_bad_video != "skip":
        raise FileNotFoundError(message)
      logging.warning("%s\nthey are skipped (data.on_bad_video='skip')", message)
    return len(problems)

  def load(self, video_path: str) -> np.ndarray:
    """float32 (num_frames, dim): the video's first num_frames feature rows.

    Raises VideoDecodeError naming the video and its feature file when they are unusable.
    """
    found = self.problem(video_path)
    if found is not None:
      raise video_io.VideoDecodeError(video_path, found)
    return np.asarray(np.load(self.feature_file(video_path))[:self.num_frames], np.float32)
