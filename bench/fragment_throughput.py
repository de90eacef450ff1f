"""Clips per second of `clip_sampler.sample_clips` against decoding alone (the same frames).

Usage:
  PYTHONPATH=. .venv/bin/python bench/fragment_throughput.py [--videos '../shared/videos/*.mp4'] \
      [--num_clips 1] [--repeats 5] [--method fragments] [--clock wall]

For each readable video, times (best of `repeats`) three ways to get the sampled frames, with the
paper's settings (clip_len 32, interval 2, 7x7 grid of 32-pixel patches, centred offsets):

* decode: `video_io.read_distinct_frames`, each needed frame decoded once as RGB and nothing else,
  the work that `sample_clips` cannot avoid (the ratio's denominator);
* read_frames: `video_io.read_frames`, the same plus copying the frames into clip order when the
  indices repeat: the decode-only denominator of the first BENCHMARKS.md table;
* sample_clips: the full `clip_sampler.sample_clips` (probe + decode + upsample + fragments).

It prints clips/s for each and ratio = sample_clips clips/s over decode clips/s. The three are
timed in turn within each repeat, so that load from other processes on a shared CPU hits all
alike; the load average is printed before and after. `--clock cpu` times the CPU seconds of this
process (all its threads: `time.process_time`) instead of wall-clock seconds, which waiting for a
busy CPU does not inflate. `--method` selects the sampler (fragments,
fragments_t with FasterVQA's t_frag 8 / aligned 8, or sama); the decode-only side reads the same
frame indices (`clip_sampler.clip_indices`).
"""

import argparse
import glob
import os
import time

from vqa_jax.data import video_io
from vqa_jax.data.sampling import clip_sampler

PAPER_SAMPLING = {"clip_len": 32, "frame_interval": 2, "grid": 7, "patch": 32}
CLIP_METHODS = ("fragments", "fragments_t", "sama")  # 32-frame clips from `clip_indices`


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_seconds_interleaved(fns, repeats: int, clock=time.perf_counter) -> list[float]:
  """The fastest of `repeats` timings (by `clock`) of each of `fns`, called in turn per repeat."""
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, fn_times in zip(fns, times):
      start = clock()
      fn()
      fn_times.append(clock() - start)
  return [min(fn_times) for fn_times in times]


def bench_video(path: str, config: dict, num_clips: int, repeats: int,
                clock=time.perf_counter) -> list[float]:
  """Seconds per call of decode, read_frames and sample_clips for one video."""
  info = video_io.probe(path)
  indices = clip_sampler.clip_indices(info.num_frames, config, num_clips)
  return best_seconds_interleaved(
      [lambda: video_io.read_distinct_frames(path, indices),
       lambda: video_io.read_frames(path, indices),
       lambda: clip_sampler.sample_clips(path, config, num_clips)], repeats, clock)


def load_average() -> str:
  """The 1, 5 and 15 minute load averages, as `uptime` prints them."""
  return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def main() -> None:
  """Benchmarks every readable video matching --videos and prints a table."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  default_videos = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "videos", "*.mp4")
  parser.add_argument("--videos", default=default_videos)
  parser.add_argument("--num_clips", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--method", default="fragments", choices=CLIP_METHODS)
  parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS))
  args = parser.parse_args()
  config = dict(PAPER_SAMPLING, method=args.method)
  if args.method == "fragments_t":
    config.update(t_frag=8, aligned=8)
  total_decode = total_full = 0.0
  print(f"method={args.method}, num_clips={args.num_clips}, best of {args.repeats} "
        f"({args.clock} clock), {os.cpu_count()} CPUs, load average {load_average()}")
  print(f"{'video':36s} {'size':>9s} {'decode clips/s':>15s} {'read_frames/s':>14s} "
        f"{'sample_clips/s':>15s} {'ratio':>6s}")
  for path in sorted(glob.glob(args.videos)):
    try:
      info = video_io.probe(path)
    except video_io.VideoDecodeError as e:
      print(f"skip {e}")
      continue
    decode, ordered, full = bench_video(path, config, args.num_clips, args.repeats,
                                        CLOCKS[args.clock])
    total_decode, total_full = total_decode + decode, total_full + full
    print(f"{os.path.basename(path):36s} {info.height:>4d}x{info.width:<4d} "
          f"{args.num_clips / decode:15.2f} {args.num_clips / ordered:14.2f} "
          f"{args.num_clips / full:15.2f} {decode / full:6.2f}")
  if total_full:
    print(f"overall: sample_clips runs at {total_decode / total_full:.2f}x the decode-only rate "
          f"(total {total_decode:.3f} s decode vs {total_full:.3f} s sample_clips)")
  print(f"load average after: {load_average()}")


if __name__ == "__main__":
  main()
