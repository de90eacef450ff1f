"""Synthetic IQA dataset: the first frames of the synthetic videos as PNG images, no download.

Image i of a split is frame 0 of synthetic video i (`metadata.sample_video` draws its content,
seed and distortions; `video.render_video` renders one frame), saved losslessly as PNG at the
spec's size. Judder, a temporal distortion, is invisible in one frame, so it is dropped from the
draw and the MOS is `metadata.mos_from_strengths` of the remaining distortions plus Gaussian
label noise (sd `label_noise`, its own stream), clipped to [1, 5] and rounded to 4 decimals.
Domains as for the videos: "train" and "test" are domain A, "cross" is domain B.

Layout: `<root>/images/<domain>/<split>_<index>.png`, FAST-VQA label files
`<root>/labels/<split>.txt` (`relpath, 0, 0, MOS`: no duration, no frame rate), `metadata.jsonl`
(content, distortions, MOS per image) and a completion marker holding the spec digest.
`ensure_dataset` generates once into a temporary folder and renames it into place
(`cache.cached_build`, as the videos; tiny: 32 images in < 1 s; demo: 704 images of 128x160 in
~15 s).

CLI: python -m vqa_jax.data.synthetic --images [--out CACHE_DIR] [--preset demo|tiny]
"""

import os

import cv2
import numpy as np

from vqa_jax.config.specs import ImageSpec
from vqa_jax.data import video_io
from vqa_jax.data.synthetic import cache
from vqa_jax.data.synthetic import metadata as metadata_lib
from vqa_jax.data.synthetic import video

FORMAT_VERSION = 1
IMAGE_EXT = ".png"
TEMPORAL_DISTORTIONS = ("judder",)


def spec_digest(spec: ImageSpec) -> str:
  """Hex hash of the spec and FORMAT_VERSION: the dataset's cache key."""
  return cache.spec_digest(spec, FORMAT_VERSION)


def sample_image(spec: ImageSpec, split: str, index: int) -> dict:
  """Metadata of one image: relpath, split, domain, content, seed, distortions, MOS."""
  meta = metadata_lib.sample_video(spec.video_spec(), split, index)
  distortions = {name: strength for name, strength in meta["distortions"].items()
                 if name not in TEMPORAL_DISTORTIONS}
  noise = np.random.default_rng([meta["seed"], 3]).standard_normal()
  mos = metadata_lib.mos_from_strengths(distortions) + spec.label_noise * noise
  return {**meta, "distortions": distortions, "mos": round(float(np.clip(mos, 1.0, 5.0)), 4),
          "relpath": f"images/{meta['domain']}/{split}_{index:05d}{IMAGE_EXT}"}


def render_image(meta: dict, spec: ImageSpec) -> np.ndarray:
  """The BGR uint8 (H, W, 3) image of `meta`: frame 0 of its synthetic video."""
  return video.render_video(meta["content"], meta["distortions"], height=spec.height,
                            width=spec.width, num_frames=1, seed=meta["seed"])[0]


def label_files(root: str) -> dict[str, str]:
  """Split -> label file of the dataset at `root`."""
  return {split: os.path.join(root, "labels", f"{split}.txt") for split in metadata_lib.SPLITS}


def generate(root: str, spec: ImageSpec) -> dict[str, str]:
  """Writes the images, label files and metadata of `spec` into `root`; returns label_files."""
  metadata = [sample_image(spec, split, i)
              for split in metadata_lib.SPLITS for i in range(spec.num_images(split))]
  for meta in metadata:
    path = os.path.join(root, meta["relpath"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(video_io.opencv_name(path), render_image(meta, spec)):
      raise OSError(f"cv2.imwrite could not write {path}")
  os.makedirs(os.path.join(root, "labels"), exist_ok=True)
  files = label_files(root)
  metadata_lib.write_index(root, files, metadata, duration=0, fps=0, digest=spec_digest(spec))
  return files


def dataset_root(cache_dir: str, spec: ImageSpec) -> str:
  """The folder under `cache_dir` that holds the image dataset of `spec`."""
  return cache.cache_root(cache_dir, "synthetic_images", spec_digest(spec))


def is_complete(root: str, spec: ImageSpec) -> bool:
  """Whether `root` holds a fully generated image dataset of `spec`."""
  return cache.is_marked_complete(root, spec_digest(spec))


def ensure_dataset(cache_dir: str, spec: ImageSpec) -> str:
  """The root of the cached image dataset of `spec` under `cache_dir`, generated if missing."""
  return cache.cached_build(cache_dir, "synthetic_images", spec_digest(spec),
                            lambda tmp: generate(tmp, spec))


def label_file_specs(root: str) -> dict[str, str]:
  """Split -> "LABEL_FILE:DATA_ROOT", the `config.data.label_files` values of the dataset."""
  return {split: f"{path}:{root}" for split, path in label_files(root).items()}
