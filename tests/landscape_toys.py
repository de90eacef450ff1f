"""A toy VQA model and data for the landscape tests, and an independent OLS p-value."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from scipy import stats

from vqa_jax.landscape import fixed_set


class ToyVQA(nn.Module):
  """A few-parameter stand-in with the VQAModel interface: uint8 video -> (B, 1) quality map."""

  @nn.compact
  def __call__(self, video, *, train):
    del train
    x = video.astype(jnp.float32).mean(axis=(1, 2, 3)) / 255.0  # (B, 3) mean colour
    x = nn.tanh(nn.Dense(6)(x))
    x = nn.LayerNorm()(x)
    return nn.Dense(1)(x)


def toy_data(num_videos=8, num_clips=2, seed=0):
  """Videos of distinct random colours (so the toy's predictions differ) and random labels."""
  rng = np.random.default_rng(seed)
  colours = rng.integers(0, 256, (num_videos, 1, 1, 1, 1, 3))
  noise = rng.integers(-20, 21, (num_videos, num_clips, 2, 4, 4, 3))
  video = np.clip(colours + noise, 0, 255).astype(np.uint8)
  return fixed_set.FixedSet(video=video, label=rng.normal(size=num_videos).astype(np.float32),
                            paths=())


def ols_slope_p(x, y, groups):
  """Two-sided p of x's slope in y ~ x + one intercept per group (least squares, t test)."""
  labels = sorted(set(groups))
  design = np.column_stack([x] + [[float(g == l) for g in groups] for l in labels])
  coef, *_ = np.linalg.lstsq(design, y, rcond=None)
  resid = y - design @ coef
  dof = len(y) - design.shape[1]
  cov = (resid @ resid / dof) * np.linalg.inv(design.T @ design)
  return 2 * stats.t.sf(abs(coef[0] / np.sqrt(cov[0, 0])), dof)
