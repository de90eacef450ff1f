"""Warnings, with counts, about a training split the run can use but probably should not.

* A batch larger than the split: every batch holds some videos more than once (other clips and
  augmentations of the same video), and one step is more than an epoch.
* Constant or near-constant labels: the correlation losses have no signal to fit (the loss sits at
  its constant value) and the score calibration, a logistic fit to these labels, degenerates.
"""

from absl import logging
import numpy as np

# Labels whose range is at most this fraction of their magnitude (at least 1) count as constant.
NEAR_CONSTANT_FRACTION = 1e-6


def batch_larger_than_split(batch_size: int, num_videos: int, split: str) -> str:
  """The warning when a batch holds more videos than the training split, else ''."""
  if batch_size <= num_videos:
    return ""
  return (f"train.batch_size {batch_size} is larger than the training split {split!r} "
          f"({num_videos} videos): every batch holds some videos more than once, and each step "
          f"covers {batch_size / num_videos:.1f} epochs")


def constant_labels(mos: np.ndarray, split: str) -> str:
  """The warning when the training labels are (near-)constant, else ''."""
  mos = np.asarray(mos, np.float64)
  if mos.size == 0:
    return ""
  low, high = float(mos.min()), float(mos.max())
  if high - low > NEAR_CONSTANT_FRACTION * max(1.0, abs(low), abs(high)):
    return ""
  spread = f"MOS {low:g}" if high == low else f"MOS {low!r} to {high!r}"
  kind = "constant" if high == low else "near-constant"
  return (f"the training labels of split {split!r} are {kind} ({mos.size} videos, {spread}): the "
          f"correlation losses have nothing to fit and stay at their constant value, and the "
          f"score calibration (a logistic fit to these labels) degenerates; check the label file")


def warn_about_training_split(entries: list, batch_size: int, split: str) -> list[str]:
  """Logs (and returns) the warnings above for the training split's `entries` (labels.Entry)."""
  found = [batch_larger_than_split(batch_size, len(entries), split),
           constant_labels(np.array([e.mos for e in entries]), split)]
  found = [text for text in found if text]
  for text in found:
    logging.warning("%s", text)
  return found
