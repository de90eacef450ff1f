"""XLA's persistent compilation cache for a block of code: programs compiled again are loaded.

A study compiles the same evaluation, landscape and fine-tuning programs for every seed and variant
(each run builds its own jitted functions, so jax's in-memory cache does not see the repeats);
with the cache on disk, a repeated program is read back instead of compiled.
"""

import contextlib
from typing import Iterator

import jax
from jax.experimental.compilation_cache import compilation_cache

_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")


@contextlib.contextmanager
def persistent_compilation_cache(directory: str) -> Iterator[None]:
  """Caches every compiled program in `directory` inside the block; the settings are restored after."""
  old = {name: getattr(jax.config, name) for name in _SETTINGS}
  for name, value in zip(_SETTINGS, (directory, 0.0, 0)):
    jax.config.update(name, value)
  compilation_cache.reset_cache()  # jax decides once per process whether to use it: decide again
  try:
    yield
  finally:
    for name, value in old.items():
      jax.config.update(name, value)
    compilation_cache.reset_cache()
