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

from vqa_jax.pretrained import cache
from vqa_jax.pretrained import download
from vqa_jax.pretrained import registry


def listing(verbose: bool = False) -> list[str]:
  """One line per registered model (and, verbose, its documentation, metrics and hash)."""
  lines = [f"cache: {cache.models_dir()}" + ("   (offline)" if download.is_offline() else ""),
           f"{'name':<14} {'kind':<9} {'config':<11} {'cached':<12} source"]
  for name in registry.names():
    entry = registry.get(name)
    url = download.source_url(entry.url, entry.file_name)
    lines.append(f"{name:<14} {entry.kind:<9} {entry.config:<11} {cache.status(name):<12} {url}")
    if verbose:
      record = download.recorded(cache.raw_path(entry))
      metrics = ", ".join(f"{k} {v}" for k, v in entry.metrics.items())
      lines += [f"    {entry.description}", f"    documented at {entry.documented_at}",
                f"    reported: {metrics} ({entry.metrics_source})",
                f"    sha256: {entry.sha256 or entry.sha256_note}"
                + (f"; recorded {record['sha256']} ({record['hash_source']})" if record else "")]
  return lines


def main() -> None:
  """Command line: --download=NAME,... fetches and converts; --offline; --verbose."""
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top

  names = flags.DEFINE_list("download", [], "Fetch and convert these models into the cache now.")
  offline = flags.DEFINE_bool("offline", None, "Never download (default: $VQA_JAX_OFFLINE).")
  verbose = flags.DEFINE_bool("verbose", False, "Also where each URL is documented, the "
                              "upstream's reported metrics and the hashes.")

  def run(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    for name in names.value:
      try:
        print(f"{name}: {cache.ensure(name, offline=offline.value)}")
      except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(listing(verbose.value)))

  from vqa_jax.runtime import entry_point  # pylint: disable=g-import-not-at-top
  entry_point.run(run)


if __name__ == "__main__":
  main()
