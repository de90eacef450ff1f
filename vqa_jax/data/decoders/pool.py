"""A pool of threads, each holding one retained decoder, mapping work in order.

NVDEC scales with concurrent sessions up to about 8 (12.3 clips/s on 1 thread, 58.8 on 8, 51 on 16;
BENCHMARKS.md), and opening a decoder costs 0.15-0.3 s, so each thread makes its decoder once
(`make_decoder()`, in that thread) and reuses it for every video it is given.
"""

from collections.abc import Callable, Iterable, Iterator
import collections
import concurrent.futures
import threading
from typing import Any


class DecoderPool:
  """`threads` threads, each with its own decoder from `make_decoder`; `imap` keeps input order."""

  def __init__(self, make_decoder: Callable[[], Any], threads: int):
    if threads < 1:
      raise ValueError(f"a decoder pool needs at least one thread, got {threads}")
    self._make_decoder = make_decoder
    self._local = threading.local()
    self.threads = threads
    self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="nvdec")

  def decoder(self) -> Any:
    """This thread's decoder, made on its first call."""
    if not hasattr(self._local, "decoder"):
      self._local.decoder = self._make_decoder()
    return self._local.decoder

  def imap(self, work: Callable[[Any, Any], Any], items: Iterable[Any],
           ahead: int | None = None) -> Iterator[Any]:
    """work(decoder, item) for each item, in order, at most `ahead` (2 x threads) in flight.

    An exception of `work` is raised where its item's result is due.
    """
    ahead = 2 * self.threads if ahead is None else ahead
    pending = collections.deque()
    run = lambda item: work(self.decoder(), item)
    try:
      for item in items:
        pending.append(self._executor.submit(run, item))
        if len(pending) >= ahead:
          yield pending.popleft().result()
      while pending:
        yield pending.popleft().result()
    finally:
      for future in pending:
        future.cancel()

  def close(self) -> None:
    """Stops the threads (after the work in flight) and drops their decoders."""
    self._executor.shutdown(wait=True, cancel_futures=True)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
