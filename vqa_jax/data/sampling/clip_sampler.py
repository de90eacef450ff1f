"""The configured clip sampler: `sampling.method` names fragments, SAMA or 1 fps (paper §8, §6.2).

`sampling.method` chooses the sampler (`sample_clips`):

* 'fragments' (FAST-VQA, `FragmentSampleFrames(clip_len, num_clips, frame_interval)` +
  `get_spatial_fragments`): clip k is `clip_len` frames at `frame_interval` in the k-th of
  `num_clips` equal segments, wrapping around short videos; a grid x grid lattice of patch x patch
  mini-patches, positions shared by the frames of each chunk of `aligned` frames (0: the clip).
* 'fragments_t' (FasterVQA, `FragmentSampleFrames(clip_len // t_frag, t_frag, frame_interval,
  num_clips)`): each clip is `t_frag` segments of the whole video, `clip_len // t_frag` frames at
  `frame_interval` from each; the clips are independent redraws (identical when centred). Same
  spatial sampler, typically with `aligned` < clip_len.
* 'sama' (SAMA, `sama.py`): FAST-VQA's segments with indices past the end clamped to
  the last frame, and per-frame-pair scales.
* 'frames_1fps' (SimpleVQA, `frames_1fps.py`): `clip_len` whole frames at one per
  second, short side resized to `short_side`, a `crop` square per frame.

Faults of the reference fixed here (paper §11 a, b):

* Evaluation is deterministic by default: with `rng=None` temporal and spatial offsets are
  centred. The reference draws them at random at test time too (FAST-VQA, FasterVQA); with
  `sampling.eval_offsets = 'random'` evaluation draws them from `eval_rng` (seeded by
  `sampling.eval_seed` and the video's index), which reproduces that protocol reproducibly.
* Small videos: when the short side is below `grid * patch`, the frames are upsampled and the
  grid is computed from the upsampled size. The reference keeps the original size for the grid
  and so takes every patch from the top-left corner of the upsampled frame.

Each distinct frame is decoded, augmented and upsampled once, however often the sampled indices
repeat it (wrap-around, clamping, several clips of a short video).
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from vqa_jax.config import choices
from vqa_jax.config import validation
from vqa_jax.config.config_base import sampling_fields
from vqa_jax.data import augment as augment_lib
from vqa_jax.data import video_io
from vqa_jax.data.sampling import fragments as fragments_lib
from vqa_jax.data.sampling import frames_1fps
from vqa_jax.data.sampling import sama
from vqa_jax.data.sampling import sama_iqa


def clip_indices(num_frames: int, sampling: Mapping[str, Any], num_clips: int,
                 rng: np.random.Generator | None = None) -> np.ndarray:
  """The frame indices of `num_clips` clips of the configured method, clip-major, flattened."""
  sampling = sampling_fields(sampling)
  method = sampling["method"]
  if method == choices.FRAMES_1FPS:
    raise ValueError("'frames_1fps' indices depend on the frame rate: frames_1fps.frame_indices")
  clip_len, interval = sampling["clip_len"], sampling["frame_interval"]
  if method == "fragments_t":
    return fragments_lib.segment_indices(num_frames, clip_len, sampling["t_frag"], interval,
                                         num_clips, rng)
  overflow = "clamp" if method == "sama" else "wrap"
  return fragments_lib.temporal_indices(num_frames, clip_len, interval, num_clips, rng, overflow)


def eval_rng(sampling: Mapping[str, Any], index: int) -> np.random.Generator | None:
  """The evaluation generator of video `index`: None (centred) unless eval_offsets is 'random'."""
  sampling = sampling_fields(sampling)
  if sampling["eval_offsets"] == "centred":
    return None
  seed = sampling["eval_seed"]
  return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def sample_clips(path: str, sampling: Mapping[str, Any], num_clips: int,
                 rng: np.random.Generator | None = None, augment: str = "none") -> np.ndarray:
  """Decodes and samples `num_clips` clips: uint8 (num_clips, clip_len, S, S, 3), S = grid * patch.

  `sampling` holds `clip_len`, `frame_interval`, `grid`, `patch` and optionally `method`,
  `aligned`, `t_frag`, `sama_mask` (see the module docstring; a field left out takes base_config's
  value, `config_base.sampling_fields`). With `rng`
  the offsets are random (training, or evaluation with eval_offsets='random'); without, centred.
  `augment` ('none' or 'autoaugment', needs `rng`) transforms the decoded clip before the
  fragments are cut, one draw per call applied to every frame (`augment.augment_clip`).
  When the container over-reports the frame count (OpenCV reads it from metadata), the clips are
  re-sampled from the frames that actually decode.
  """
  sampling = sampling_fields(sampling)
  validation.check_sampling(sampling)
  method = sampling["method"]
  if method == choices.FRAMES_1FPS:  # SimpleVQA: whole frames at 1 fps (frames_1fps.py)
    return frames_1fps.sample_clips(path, sampling, num_clips, rng, augment)
  clip_len, grid, patch = sampling["clip_len"], sampling["grid"], sampling["patch"]
  frames, frame_index = video_io.read_sampled_frames(
      path, lambda info: clip_indices(info.num_frames, sampling, num_clips, rng))
  if augment != "none":
    if rng is None:
      raise ValueError(f"augment={augment!r} needs a random generator (training only)")
    frames = augment_lib.augment_clip(frames, rng, augment)
  if method == "sama":
    fragments = sama.sample_fragments(frames, frame_index, grid, patch, clip_len, rng,
                                      sampling["sama_mask"])
  elif method == "sama_iqa":
    fragments = np.stack([sama_iqa.sample_fragments(frames[i], grid, patch, rng)
                          for i in frame_index])
  else:
    aligned = sampling["aligned"] or clip_len
    fragments = fragments_lib.sample_fragments(frames, grid, patch, aligned, rng, frame_index)
  return fragments.reshape(num_clips, clip_len, *fragments.shape[1:])
