"""The synthetic video dataset: every video of a spec generated into a folder cached by its digest.

Layout: `<root>/videos/<domain>/<split>_<index>.avi`, FAST-VQA label files
`<root>/labels/<split>.txt`, `metadata.jsonl` (one `metadata.sample_video` per line), `spec.json`
and the completion marker holding `spec_digest(spec)`. Generation is deterministic per seed (each
video has its own seed sequence), whatever the number of worker processes. The demo dataset
(480 + 128 + 96 videos of 64x80, 32 frames) is ~71 MB and generates in ~5 s on 2 cores.

`ensure_dataset` keys the dataset by a hash of the spec and `FORMAT_VERSION` and builds it through
`cache.cached_build` (atomic, manifest-checked).
"""

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import shutil
from typing import Any

import cv2
import numpy as np

from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import labels as labels_lib
from vqa_jax.data.synthetic import cache
from vqa_jax.data.synthetic import metadata as metadata_lib
from vqa_jax.data.synthetic import video
from vqa_jax.runtime import progress

# Bump when the generator's output changes, so that cached datasets are regenerated.
FORMAT_VERSION = 2

CACHE_SUBDIR = "synthetic"  # under the cache folder ($VQA_JAX_CACHE): where the trainer looks
SPEC_FILE = "spec.json"


def spec_digest(spec: SyntheticSpec) -> str:
  """Hex hash of the spec and FORMAT_VERSION: the dataset's cache key."""
  return cache.spec_digest(spec, FORMAT_VERSION)


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
  """A generated dataset: root folder, label file per split and the metadata file."""

  root: str
  label_files: dict[str, str]
  metadata_file: str


def _write_one(job: tuple[str, dict[str, Any], SyntheticSpec]) -> None:
  """Renders and writes one video (runs in a worker process)."""
  root, meta, spec = job
  frames = video.render_video(meta["content"], meta["distortions"], height=spec.height,
                              width=spec.width, num_frames=spec.num_frames, seed=meta["seed"])
  video.write_video(os.path.join(root, meta["relpath"]), frames, spec.fps, spec.codec_quality)


def _init_worker() -> None:
  """Keeps each worker process on one OpenCV thread."""
  cv2.setNumThreads(1)


def _run_jobs(jobs: list[tuple[str, dict[str, Any], SyntheticSpec]], num_workers: int) -> None:
  """Runs `_write_one` over jobs, in a spawned process pool when num_workers > 1."""
  with progress.tqdm_bar(len(jobs), "video", desc="generating", leave=False) as bar:
    if num_workers <= 1 or len(jobs) <= 1:
      for job in jobs:
        _write_one(job)
        bar.update()
      return
    context = multiprocessing.get_context("spawn")  # Safe even if the caller has started JAX.
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                                initializer=_init_worker) as pool:
      for _ in pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (8 * num_workers))):
        bar.update()


def _dataset_at(root: str, spec: SyntheticSpec) -> SyntheticDataset:
  """The SyntheticDataset paths under `root` (a shift split only where the spec has videos)."""
  return SyntheticDataset(
      root=root,
      label_files={split: os.path.join(root, "labels", f"{split}.txt")
                   for split in metadata_lib.video_splits(spec)},
      metadata_file=os.path.join(root, metadata_lib.METADATA_FILE))


# Below this many frame pixels (about 2 s of work) generation runs in-process: spawning workers,
# which re-import the caller's main module, would cost more than it saves.
_MIN_PIXELS_FOR_POOL = 2e7


def _default_workers(spec: SyntheticSpec) -> int:
  """Worker processes for generation: 1 for small specs, else the CPU count (at most 8)."""
  videos = sum(spec.num_videos(s) for s in metadata_lib.video_splits(spec))
  pixels = videos * spec.num_frames * spec.height * spec.width
  return 1 if pixels < _MIN_PIXELS_FOR_POOL else max(1, min(8, os.cpu_count() or 1))


def generate(root: str, spec: SyntheticSpec, num_workers: int | None = None) -> SyntheticDataset:
  """Generates the dataset of `spec` into `root`, replacing an earlier one there."""
  dataset = _dataset_at(root, spec)
  for stale in (cache.MARKER_FILE, "videos", "labels"):
    path = os.path.join(root, stale)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)
  metadata = metadata_lib.sample_metadata(spec)
  for domain in sorted({m["domain"] for m in metadata}):
    os.makedirs(os.path.join(root, "videos", domain), exist_ok=True)
  os.makedirs(os.path.join(root, "labels"), exist_ok=True)
  _run_jobs([(root, meta, spec) for meta in metadata],
            _default_workers(spec) if num_workers is None else num_workers)
  with open(os.path.join(root, SPEC_FILE), "w", encoding="utf-8") as f:
    json.dump({"format": FORMAT_VERSION, **spec.digest_fields()}, f, indent=2, sort_keys=True)
  metadata_lib.write_index(root, dataset.label_files, metadata, duration=spec.duration,
                           fps=spec.fps, digest=spec_digest(spec))
  return dataset


def dataset_root(cache_dir: str, spec: SyntheticSpec) -> str:
  """The folder under `cache_dir` that holds the dataset of `spec`."""
  return cache.cache_root(cache_dir, "synthetic", spec_digest(spec))


def is_complete(root: str, spec: SyntheticSpec) -> bool:
  """Whether `root` holds a fully generated dataset of `spec`."""
  return cache.is_marked_complete(root, spec_digest(spec))


def ensure_dataset(cache_dir: str, spec: SyntheticSpec,
                   num_workers: int | None = None) -> SyntheticDataset:
  """Returns the cached dataset of `spec` under `cache_dir`, generating it first if missing."""
  root = cache.cached_build(cache_dir, "synthetic", spec_digest(spec),
                            lambda tmp: generate(tmp, spec, num_workers))
  return _dataset_at(root, spec)


def ensure_in_cache(cache_dir: str, spec: SyntheticSpec,
                    num_workers: int | None = None) -> SyntheticDataset:
  """`ensure_dataset` in `<cache_dir>/synthetic`, where the trainer (data.cache_dir or
  $VQA_JAX_CACHE) and the CLI's --out look."""
  return ensure_dataset(os.path.join(cache_dir, CACHE_SUBDIR), spec, num_workers)


def split_statistics(dataset: SyntheticDataset) -> dict[str, dict[str, float]]:
  """MOS count/min/max/mean/std per split, read back from the label files."""
  stats = {}
  for split, label_file in dataset.label_files.items():
    mos = np.array([e.mos for e in labels_lib.read_labels(label_file, dataset.root)])
    stats[split] = {"count": len(mos), "min": float(mos.min()), "max": float(mos.max()),
                    "mean": float(mos.mean()), "std": float(mos.std())}
  return stats
