"""runtime.compilation_cache: programs compiled inside the block land on disk; settings restored."""

import jax
import jax.numpy as jnp
import numpy as np

from vqa_jax.runtime.compilation_cache import persistent_compilation_cache


def programs(cache):
  """The cached programs' keys (each also has a '-atime' file)."""
  return {p.name for p in cache.iterdir() if not p.name.endswith("-atime")}


def test_compiled_programs_are_cached_on_disk_and_settings_restored(tmp_path):
  before = jax.config.jax_compilation_cache_dir
  cache = tmp_path / "xla_cache"
  with persistent_compilation_cache(str(cache)):
    first = jax.jit(lambda x: jnp.sin(x) * 3.0)(np.arange(5.0, dtype=np.float32))
    entries = programs(cache)
    assert len(entries) == 1
    # A new jitted function with the same program is read back: no new entry, same numbers.
    again = jax.jit(lambda x: jnp.sin(x) * 3.0)(np.arange(5.0, dtype=np.float32))
    assert programs(cache) == entries
  np.testing.assert_array_equal(first, again)
  np.testing.assert_allclose(first, np.sin(np.arange(5.0)) * 3.0, rtol=1e-6)
  assert jax.config.jax_compilation_cache_dir == before
  jax.jit(lambda x: jnp.cos(x) + 1.0)(np.arange(3.0, dtype=np.float32))  # outside the block: not cached there
  assert programs(cache) == entries
