"""Generates the synthetic dataset where the trainer looks: `python -m vqa_jax.data.synthetic`.

  python -m vqa_jax.data.synthetic [--out CACHE_DIR] [--preset demo|tiny] [--seed N] [--force]
  vqa-jax synthetic --images --preset tiny    # the IQA images (data.source='synthetic_images')

CACHE_DIR is the trainer's data.cache_dir / $VQA_JAX_CACHE (the default). The videos go in
CACHE_DIR/synthetic/synthetic_<spec hash>, the images in CACHE_DIR/synthetic_images_<spec hash>,
where the trainer looks for them. A complete, intact copy is reused unless --force.
"""

import dataclasses
import os
import shutil
import time
from typing import Iterable

from absl import flags

from vqa_jax.config.specs import ImageSpec
from vqa_jax.config.specs import SyntheticSpec
from vqa_jax.data import cache_location
from vqa_jax.data.synthetic import dataset as dataset_lib
from vqa_jax.data.synthetic import images
from vqa_jax.runtime import entry_point

_OUT = flags.DEFINE_string(
    "out", None, "Cache folder as the trainer's data.cache_dir / $VQA_JAX_CACHE (default: that of "
    "the trainer); the videos go in OUT/synthetic/synthetic_<spec hash>, the images in "
    "OUT/synthetic_images_<spec hash>, where the trainer looks.")
_PRESET = flags.DEFINE_enum("preset", "demo", ["demo", "tiny"], "Dataset size preset.")
_SEED = flags.DEFINE_integer("seed", None, "Overrides the preset's seed.")
_WORKERS = flags.DEFINE_integer("workers", None, "Worker processes for the videos (default: 1 "
                                "for small specs, else the CPU count, at most 8).")
_FORCE = flags.DEFINE_bool("force", False, "Regenerate even if a complete copy exists.")
_IMAGES = flags.DEFINE_bool("images", False, "Generate the synthetic IQA image set (first frames "
                            "as PNG) instead of the videos.")


def _with_seed(spec):
  """The spec with --seed, when given."""
  return spec if _SEED.value is None else dataclasses.replace(spec, seed=_SEED.value)


def _folder_megabytes(paths: Iterable[str]) -> float:
  """Total size in MB of the given files."""
  return sum(os.path.getsize(p) for p in paths) / 2**20


def _remove_for_force(root: str) -> None:
  """Deletes `root` when --force asks for a fresh copy."""
  if _FORCE.value and os.path.isdir(root):
    shutil.rmtree(root)


def generate_images(out: str) -> None:
  """Generates (or reuses) the preset image set under `out` and prints its root and label files."""
  spec = _with_seed({"demo": ImageSpec, "tiny": ImageSpec.tiny}[_PRESET.value]())
  root = images.dataset_root(out, spec)
  reused = images.is_complete(root, spec) and not _FORCE.value
  _remove_for_force(root)
  root = images.ensure_dataset(out, spec)
  print(f"root: {root}")
  for split, label_file in images.label_files(root).items():
    print(f"{split}: {label_file}")
  count = sum(spec.num_images(split) for split in images.label_files(root))
  print(f"{'reused' if reused else 'generated'} {count} images")


def generate_videos(out: str) -> None:
  """Generates (or reuses) the preset video set under `out`; prints its files, size and MOS."""
  spec = _with_seed({"demo": SyntheticSpec.demo, "tiny": SyntheticSpec.tiny}[_PRESET.value]())
  root = dataset_lib.dataset_root(os.path.join(out, dataset_lib.CACHE_SUBDIR), spec)
  reused = dataset_lib.is_complete(root, spec) and not _FORCE.value
  start = time.perf_counter()
  _remove_for_force(root)
  dataset = dataset_lib.ensure_in_cache(out, spec, _WORKERS.value)
  seconds = time.perf_counter() - start
  print(f"root: {dataset.root}")
  for split, label_file in dataset.label_files.items():
    print(f"{split}: {label_file}")
  print(f"metadata: {dataset.metadata_file}")
  videos = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(dataset.root, "videos"))
            for f in files]
  print(f"{'reused' if reused else 'generated'} {len(videos)} videos "
        f"({_folder_megabytes(videos):.1f} MB) in {seconds:.1f} s")
  for split, s in dataset_lib.split_statistics(dataset).items():
    print(f"{split}: n={s['count']} MOS min {s['min']:.3f} max {s['max']:.3f} "
          f"mean {s['mean']:.3f} std {s['std']:.3f}")


def main(argv: list[str]) -> None:
  """Generates (or reuses) the preset dataset, videos or --images, under --out."""
  del argv
  out = _OUT.value or cache_location.default_cache_dir()
  if _IMAGES.value:
    generate_images(out)
  else:
    generate_videos(out)


if __name__ == "__main__":
  entry_point.run(main)
