"""Before compiling: every split's videos must open (a container probe, no decode).

`check_splits(splits, on_bad_video)` opens each video once (`video_io.open_problem`, in a thread
pool: OpenCV releases the GIL) so that a bad file in a test split is found before training rather
than after it. With on_bad_video='error' the unopenable files are an error listing them per split;
with 'skip' a warning (the pipelines then skip them, counted). A file that opens but decodes fewer
frames than listed is found only when read (`video_io.SHORTFALLS`). Cost: ~1-2 ms per video on one
core, e.g. under a minute for LSVQ's 39k videos on 8 threads.
"""

import concurrent.futures
import time

from absl import logging

from vqa_jax.data import video_io

MAX_LISTED = 20
WORKERS = 8


class UnopenableVideos(ValueError):
  """Videos that cannot be opened, listed per split with each file's reason."""


def unopenable(paths: list[str], workers: int = WORKERS) -> list[tuple[str, str]]:
  """(path, reason) of each distinct path that cannot be opened, in the order given."""
  distinct = list(dict.fromkeys(paths))
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    problems = list(pool.map(video_io.open_problem, distinct))
  return [(path, problem) for path, problem in zip(distinct, problems) if problem]


def check_splits(splits: dict[str, list], on_bad_video: str = "error") -> None:
  """Opens every video of every split {name: [Entry]}; raises or warns (module docstring)."""
  start = time.monotonic()
  report = []
  for name, entries in splits.items():
    bad = unopenable([e.path for e in entries])
    if bad:
      listed = "\n  ".join(f"{video_io.printable_path(path)}: {reason}"
                            for path, reason in bad[:MAX_LISTED])
      report.append(f"split {name!r}: {len(bad)} of {len(entries)} videos cannot be opened "
                    f"(first {min(len(bad), MAX_LISTED)} listed):\n  {listed}")
  logging.info("opened the videos of %d splits in %.1f s", len(splits), time.monotonic() - start)
  if not report:
    return
  if on_bad_video == "error":
    raise UnopenableVideos("\n".join(report) + "\n(data.on_bad_video='skip' skips them instead)")
  logging.warning("%s\nthese will be skipped (data.on_bad_video='skip')", "\n".join(report))
