"""Clips per second of `sampling.sample_clips` against decoding alone (`read_frames`, same frames).

Usage:
  PYTHONPATH=. .venv/bin/python bench/fragment_throughput.py [--videos '../shared/videos/*.mp4'] \
      [--num_clips 1] [--repeats 5] [--method fragments]

For each readable video, times (best of `repeats`) decoding the sampled frames with
`video_io.read_frames` and the full `sample_clips` (probe + decode + upsample + fragments) with
the paper's settings (clip_len 32, interval 2, 7x7 grid of 32-pixel patches, centred offsets),
and prints clips/s for both and their ratio. `--method` selects the sampler (fragments,
fragments_t with FasterVQA's t_frag 8 / aligned 8, or sama); the decode-only side reads the same
frame indices (`sampling.clip_indices`).
"""

import argparse
import glob
import os
import time

from vqa_jax.data import sampling
from vqa_jax.data import video_io

PAPER_SAMPLING = {"clip_len": 32, "frame_interval": 2, "grid": 7, "patch": 32}


def best_seconds(fn, repeats: int) -> float:
  """The fastest of `repeats` wall-clock timings of fn()."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def bench_video(path: str, config: dict, num_clips: int, repeats: int) -> tuple[float, float]:
  """Seconds per call of decode-only and of sample_clips for one video."""
  info = video_io.probe(path)
  indices = sampling.clip_indices(info.num_frames, config, num_clips)
  decode = best_seconds(lambda: video_io.read_frames(path, indices), repeats)
  full = best_seconds(lambda: sampling.sample_clips(path, config, num_clips), repeats)
  return decode, full


def main() -> None:
  """Benchmarks every readable video matching --videos and prints a table."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  default_videos = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "videos", "*.mp4")
  parser.add_argument("--videos", default=default_videos)
  parser.add_argument("--num_clips", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--method", default="fragments", choices=sampling.METHODS)
  args = parser.parse_args()
  config = dict(PAPER_SAMPLING, method=args.method)
  if args.method == "fragments_t":
    config.update(t_frag=8, aligned=8)
  total_decode = total_full = 0.0
  print(f"method={args.method}, num_clips={args.num_clips}, best of {args.repeats}")
  print(f"{'video':40s} {'size':>9s} {'decode clips/s':>15s} {'sample_clips/s':>15s} {'ratio':>6s}")
  for path in sorted(glob.glob(args.videos)):
    try:
      info = video_io.probe(path)
    except video_io.VideoDecodeError as e:
      print(f"skip {e}")
      continue
    decode, full = bench_video(path, config, args.num_clips, args.repeats)
    total_decode, total_full = total_decode + decode, total_full + full
    print(f"{os.path.basename(path):40s} {info.height:>4d}x{info.width:<4d} "
          f"{args.num_clips / decode:15.2f} {args.num_clips / full:15.2f} {decode / full:6.2f}")
  if total_full:
    print(f"overall: sample_clips runs at {total_decode / total_full:.2f}x the decode-only rate "
          f"(total {total_decode:.3f} s decode vs {total_full:.3f} s sample_clips)")


if __name__ == "__main__":
  main()
