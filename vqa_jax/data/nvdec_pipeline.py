"""NVDEC beside the CPU workers (`data.decoder` 'nvdec' or 'hybrid'): the plan's batches.

Each local batch of the `ElementPlan` is split by slot: the first `Decoding.nvdec_slots` slots are
decoded by a `DecoderPool` of retained NVDEC decoders (one per thread) and their fragments cut on
the device (`decoders/device_fragments.py`); the remaining slots go to the CPU loader (`data.loader`
with `data.workers`). Both halves load the plan's elements (same entry, same sampling generator,
same bad-video policy), so the batches hold exactly the 'opencv' decoder's elements in the same
order; only where the pixels were decoded differs (OpenCV vs NVDEC: tests/test_nvdec_*.py).

Per video, NVDEC may decline (`NvdecUnsupported`: codec, container, size, rotation, a short
video that needs upsampling): the video is decoded on the CPU from a copy of the same generator,
counted and logged once (`FallbackLog`). `on_bad_video` keeps its meaning: a video that OpenCV
cannot decode either raises (or is skipped) exactly as on the CPU path. The batch's `video` is a
jax array on the device; the other keys stay numpy.
"""

from collections.abc import Callable, Iterator, Mapping
import copy
import dataclasses
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.config import validation
from vqa_jax.config.config_base import sampling_fields
from vqa_jax.data import element_plan
from vqa_jax.data import video_io
from vqa_jax.data.decoders import device_fragments
from vqa_jax.data.decoders import frame_decoder
from vqa_jax.data.decoders import pool as pool_lib
from vqa_jax.data.sampling import clip_sampler

# Set to 1: `make_nvdec_decoder` gives the fake decoder (dry runs without a GPU).
FAKE_NVDEC_ENV = "VQA_JAX_FAKE_NVDEC"
CpuBatches = Callable[[element_plan.ElementPlan], Iterator[dict[str, np.ndarray]]]
# Keys whose NVDEC elements are device arrays (stacked on the device).
_DEVICE_KEYS = ("video",)


@dataclasses.dataclass(frozen=True)
class Decoding:
  """data.decoder with its NVDEC share of each batch and its decoder threads."""

  decoder: str = "opencv"
  share: float = 0.6
  threads: int = 8

  @classmethod
  def from_config(cls, data: Mapping[str, Any]) -> "Decoding":
    """The data section's decoder, nvdec_share and nvdec_threads (defaults where absent)."""
    return cls(data.get("decoder", "opencv"), data.get("nvdec_share", 0.6),
               data.get("nvdec_threads", 8))

  def nvdec_slots(self, local_batch: int) -> int:
    """How many slots of each local batch NVDEC decodes: all ('nvdec'), round(share * B) ('hybrid').

    A hybrid batch of two or more keeps at least one slot on each side.
    """
    if self.decoder == "opencv":
      return 0
    if self.decoder == "nvdec" or local_batch == 1:
      return local_batch
    return min(max(round(self.share * local_batch), 1), local_batch - 1)


class FallbackLog(element_plan.PathReasons):
  """Thread-safe record of the videos NVDEC declined and the CPU decoded: `count`, `reasons`."""

  def __init__(self):
    super().__init__()
    self.decodes = 0  # CPU decodes on behalf of NVDEC (a video may fall back more than once)

  def record(self, path: str, reason: str) -> None:
    """Counts a fallback, logging a warning the first time `path` falls back."""
    with self._lock:
      self.decodes += 1
    if self._add(path, reason):
      logging.warning("NVDEC declined %s (%s): decoded on the CPU", video_io.printable_path(path),
                      reason)


def device_clips(decoder: frame_decoder.FrameDecoder, path: str, sampling: Mapping[str, Any],
                 num_clips: int, rng: np.random.Generator | None = None) -> jax.Array:
  """`clip_sampler.sample_clips` for 'fragments'/'fragments_t' with `decoder`'s device frames.

  The same indices and corners from the same generator draws; NvdecUnsupported where the CPU must
  decode (an image, or a short side below grid * patch, which the CPU upsamples).
  """
  sampling = sampling_fields(sampling)
  if video_io.is_image(path):
    raise frame_decoder.NvdecUnsupported(path, "an image, not a video")
  clip_len, grid, patch = sampling["clip_len"], sampling["grid"], sampling["patch"]
  frames, frame_index = decoder.read_sampled_frames(
      path, lambda info: clip_sampler.clip_indices(info.num_frames, sampling, num_clips, rng))
  if min(frames.shape[1:3]) < grid * patch:
    raise frame_decoder.NvdecUnsupported(path, f"short side {min(frames.shape[1:3])} below "
                                         f"{grid * patch}: upsampled on the CPU")
  fragments = device_fragments.cut_fragments(frames, frame_index, grid, patch,
                                             sampling["aligned"] or clip_len, rng)
  return fragments.reshape(num_clips, clip_len, *fragments.shape[1:])


@dataclasses.dataclass
class DeviceSampler:
  """A clip sampler (`sample_clips`'s signature) on the pool thread's decoder, with CPU fallback."""

  pool: pool_lib.DecoderPool
  fallbacks: FallbackLog

  def __call__(self, path: str, sampling: Mapping[str, Any], num_clips: int,
               rng: np.random.Generator | None = None, augment: str = "none"):
    saved = copy.deepcopy(rng)  # the CPU fallback redraws exactly what NVDEC drew
    try:
      return device_clips(self.pool.decoder(), path, sampling, num_clips, rng)
    except frame_decoder.NvdecUnsupported as e:
      self.fallbacks.record(path, e.reason)
      return clip_sampler.sample_clips(path, sampling, num_clips, saved, augment)


def _stack(key: str, values: list) -> Any:
  """One key of a batch part: device arrays stacked on the device, the rest with numpy."""
  if key in _DEVICE_KEYS:
    return jnp.stack([jnp.asarray(v) for v in values])
  return np.stack([np.asarray(v) for v in values])


def _join(key: str, nvdec_part: Any, cpu_part: np.ndarray) -> Any:
  """The NVDEC slots then the CPU slots of one key."""
  if key in _DEVICE_KEYS:
    return jnp.concatenate([nvdec_part, jnp.asarray(cpu_part)])
  return np.concatenate([nvdec_part, cpu_part])


def make_nvdec_decoder() -> Callable[[], frame_decoder.FrameDecoder]:
  """The real decoder's factory after the start-up checks (driver, GPU, PyNvVideoCodec).

  With FAKE_NVDEC_ENV=1 in the environment: the fake decoder (OpenCV frames as device arrays),
  for dry runs of the whole path on a machine without NVDEC (bench/nvdec_check.sh).
  """
  if os.environ.get(FAKE_NVDEC_ENV) == "1":
    logging.warning("%s=1: the fake NVDEC decoder (OpenCV frames on the device)", FAKE_NVDEC_ENV)
    return frame_decoder.OpenCVDeviceDecoder
  from vqa_jax.data.decoders import pynvc  # pylint: disable=g-import-not-at-top
  pynvc.check_available()
  return pynvc.PyNvDecoder


def batches(plan: element_plan.ElementPlan, decoding: Decoding, cpu_batches: CpuBatches,
            make_decoder: Callable[[], frame_decoder.FrameDecoder] | None = None,
            fallbacks: FallbackLog | None = None) -> Iterator[dict[str, Any]]:
  """The plan's batches with `decoding.nvdec_slots` slots each from NVDEC, the rest from the CPU.

  `cpu_batches(sub_plan)` is the CPU loader; `make_decoder` makes one thread's decoder (default:
  PyNvVideoCodec's, after `make_nvdec_decoder`'s checks, which fail at start naming what is
  missing). NVDEC's declines are recorded in `fallbacks`.
  """
  sampling = plan.load_with(clip_sampler.sample_clips).sampling
  validation.check_decoder({"decoder": decoding.decoder, "nvdec_share": decoding.share,
                            "nvdec_threads": decoding.threads}, sampling)
  make_decoder = make_nvdec_decoder() if make_decoder is None else make_decoder
  fallbacks = FallbackLog() if fallbacks is None else fallbacks
  num_nvdec = decoding.nvdec_slots(plan.local_batch)
  pool = pool_lib.DecoderPool(make_decoder, decoding.threads)
  load = plan.load_with(DeviceSampler(pool, fallbacks))
  elements = pool.imap(lambda _, position: load(int(position)),
                       plan.positions[:, :num_nvdec].reshape(-1))
  cpu = None
  if num_nvdec < plan.local_batch:
    cpu = cpu_batches(dataclasses.replace(plan, positions=plan.positions[:, num_nvdec:]))
  names = list(plan.spec)
  try:
    for _ in range(plan.positions.shape[0]):
      part = [next(elements) for _ in range(num_nvdec)]
      batch = {k: _stack(k, [e[k] for e in part]) for k in names}
      if cpu is not None:
        cpu_batch = next(cpu)
        batch = {k: _join(k, batch[k], cpu_batch[k]) for k in names}
      yield batch
  finally:
    elements.close()
    if cpu is not None:
      cpu.close()
    pool.close()
    if fallbacks.count:
      logging.warning("NVDEC: %d video(s) decoded on the CPU instead (%d decodes)",
                      fallbacks.count, fallbacks.decodes)
