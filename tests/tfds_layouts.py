"""The documented manual_dir layouts of the TFDS builders, made from the tiny synthetic dataset."""

import os
import shutil

from vqa_jax.data import tfds_builders

# Builder -> {split: (label file, synthetic split, relpath of video i)}, in the documented layout.
LAYOUTS = {
    tfds_builders.Konvid1k: {
        "full": ("labels.txt", "train", lambda i: f"KoNViD_1k_videos/{4542323058 + i}.mp4")},
    tfds_builders.LiveVqc: {"full": ("labels.txt", "test", lambda i: f"Video/A{i + 1:03d}.mp4")},
    tfds_builders.YoutubeUgc: {
        "full": ("labels.txt", "cross",
                 lambda i: f"Sports_480P-{i:04x}_crf_10_ss_00_t_20.0.mp4")},
    tfds_builders.Lsvq: {
        "train": ("train_labels.txt", "train",
                  lambda i: f"yfcc-batch1/{700 + i}.mp4" if i % 2 else f"ia-batch3/clip_{i}.mp4"),
        "test": ("labels_test.txt", "test", lambda i: f"yfcc-batch2/{900 + i}.mp4"),
        "test_1080p": ("labels_1080p.txt", "cross", lambda i: f"backup/{i}.mp4")},
}


def make_manual_dir(synthetic_root: str, manual_dir: str, layout) -> None:
  """Copies synthetic videos under the dataset's names and writes its label files."""
  for label_name, split, relpath_fn in layout.values():
    lines = open(os.path.join(synthetic_root, "labels", f"{split}.txt")).read().splitlines()
    out = []
    for i, line in enumerate(lines):
      src, duration, fps, mos = (f.strip() for f in line.split(","))
      relpath = relpath_fn(i)
      os.makedirs(os.path.dirname(os.path.join(manual_dir, relpath)), exist_ok=True)
      shutil.copyfile(os.path.join(synthetic_root, src), os.path.join(manual_dir, relpath))
      out.append(f"{relpath}, {duration}, {fps}, {mos}\n")
    with open(os.path.join(manual_dir, label_name), "w") as f:
      f.writelines(out)


def parse_label_file(path: str) -> list[tuple[str, float]]:
  """(relpath, MOS) per line, parsed independently of vqa_jax."""
  rows = []
  for line in open(path):
    fields = line.split(",")
    rows.append((fields[0].strip(), float(fields[3])))
  return rows
