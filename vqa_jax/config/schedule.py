"""Epochs to training steps: the one conversion of an epoch schedule into the train section's steps.

An epoch over N training videos at batch B is I = ceil(N / B) steps (the reference's DataLoader
keeps the last partial batch; floor(N / B) with `drop_last`), and e epochs are int(e * I) steps.
"""

import math


def steps_per_epoch(num_train: int, batch_size: int, drop_last: bool = False) -> int:
  """I: the steps of one epoch over `num_train` videos, ceil(N / B) (floor with `drop_last`)."""
  batches = num_train / batch_size
  return math.floor(batches) if drop_last else math.ceil(batches)


def epochs_to_steps(epochs: float, per_epoch: int) -> int:
  """The steps of `epochs` epochs of `per_epoch` steps: int(epochs * I) (a fraction rounds down)."""
  return int(epochs * per_epoch)
