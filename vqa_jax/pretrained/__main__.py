"""Lists the named pretrained models, and fetches and converts them into the cache on request.

  vqa-jax models                          # name, kind, config, cache state, source URL
  vqa-jax models --download=fast-vqa-b    # fetch + convert now (e.g. before going offline)
  vqa-jax models --verbose                # also where the URL is documented, metrics, hashes

The source is the upstream URL, or `$VQA_JAX_MODELS_MIRROR/<file>` when the mirror is set. The
cache state is 'converted', 'downloaded', 'partial (N bytes)' or '-', under
$VQA_JAX_CACHE/models/ (`vqa_jax.pretrained.cache`).
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags

from vqa_jax.pretrained import cache
from vqa_jax.runtime import entry_point

_DOWNLOAD = flags.DEFINE_list("download", [], "Fetch and convert these models into the cache now.")
_OFFLINE = flags.DEFINE_bool("offline", None, "Never download (default: $VQA_JAX_OFFLINE).")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Also where each URL is documented, the upstream's "
                             "reported metrics and the hashes.")


def main(argv):
  """Fetches and converts the --download models, then lists every named model."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  for name in _DOWNLOAD.value:
    try:
      print(f"{name}: {cache.ensure(name, offline=_OFFLINE.value)}")
    except (OSError, ValueError, KeyError) as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  print("\n".join(cache.listing(_VERBOSE.value)))


if __name__ == "__main__":
  entry_point.run(main)
