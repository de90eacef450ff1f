"""The cache of generated data: a folder per content hash, built atomically, checked by a manifest.

`cached_build` generates into a temporary folder, writes the completion marker last and renames
the folder into place, so an interrupted run never leaves a folder that looks complete. A
`MANIFEST.json` (every file's size and BLAKE2b digest) is checked whenever the cache is used: a
file damaged after generation is named in a warning and the folder regenerated.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Callable

from absl import logging

MARKER_FILE = "COMPLETE"
MANIFEST_FILE = "MANIFEST.json"


def spec_digest(spec: object, format_version: int) -> str:
  """Hex SHA-256 of a dataclass spec (its `digest_fields()` where it has them) and its generator's
  format version: a cache key."""
  fields = spec.digest_fields() if hasattr(spec, "digest_fields") else dataclasses.asdict(spec)
  text = json.dumps({"format": format_version, **fields}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()


def cache_root(cache_dir: str, prefix: str, digest: str) -> str:
  """The folder under `cache_dir` for generated data named `prefix` with content hash `digest`."""
  return os.path.join(cache_dir, f"{prefix}_{digest[:16]}")


def is_marked_complete(root: str, digest: str) -> bool:
  """Whether `root` holds the completion marker of the generation with hash `digest`."""
  try:
    with open(os.path.join(root, MARKER_FILE), encoding="utf-8") as f:
      return f.read().strip() == digest
  except OSError:
    return False


def _file_digest(path: str) -> str:
  """BLAKE2b hex digest of a file's bytes."""
  h = hashlib.blake2b(digest_size=16)
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def _data_files(root: str) -> list[str]:
  """Relative paths of the files under `root` that the manifest covers (all but itself)."""
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root)
                for f in files if f != MANIFEST_FILE)


def write_manifest(root: str) -> None:
  """Writes `MANIFEST_FILE`: {relative path: [size, BLAKE2b digest]} of every file under `root`."""
  manifest = {rel: [os.path.getsize(os.path.join(root, rel)), _file_digest(os.path.join(root, rel))]
              for rel in _data_files(root)}
  with open(os.path.join(root, MANIFEST_FILE), "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=0, sort_keys=True)


def manifest_problems(root: str) -> list[str]:
  """The files under `root` that differ from its manifest ('PATH: reason'); [] when intact."""
  try:
    with open(os.path.join(root, MANIFEST_FILE), encoding="utf-8") as f:
      manifest = json.load(f)
  except (OSError, ValueError):
    return [f"{os.path.join(root, MANIFEST_FILE)}: missing or unreadable"]
  problems = []
  for rel, (size, digest) in manifest.items():
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
      problems.append(f"{path}: missing")
    elif os.path.getsize(path) != size:
      problems.append(f"{path}: {os.path.getsize(path)} bytes, {size} when generated")
    elif _file_digest(path) != digest:
      problems.append(f"{path}: content changed since it was generated")
  return problems


def is_intact(root: str, digest: str) -> bool:
  """Whether `root` is marked complete for `digest` and every file matches its manifest.

  A damaged copy is logged, naming (up to 5 of) its damaged files.
  """
  if not is_marked_complete(root, digest):
    return False
  problems = manifest_problems(root)
  if problems:
    logging.warning("cached data %s is damaged, regenerating it: %s%s", root,
                    "; ".join(problems[:5]), f" (and {len(problems) - 5} more)"
                    if len(problems) > 5 else "")
  return not problems


def cached_build(cache_dir: str, prefix: str, digest: str,
                 build: Callable[[str], object]) -> str:
  """The cache folder of (`prefix`, `digest`), first filled by `build(tmp)` if missing or damaged.

  `build` writes everything, `MARKER_FILE` holding `digest` last, into a temporary folder; a
  manifest of every file's size and digest is added and the folder renamed into place, so a crash
  never leaves a folder that looks complete, concurrent generators settle on one copy, and a file
  damaged later (truncated, overwritten) is found by `is_intact` and the copy regenerated.
  """
  root = cache_root(cache_dir, prefix, digest)
  if is_intact(root, digest):
    return root
  os.makedirs(cache_dir, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.tmp", dir=cache_dir)
  try:
    build(tmp)
    write_manifest(tmp)
    if os.path.isdir(root):  # A leftover without a valid marker, or damaged: replace it.
      if is_intact(root, digest):  # Another process finished first.
        return root
      shutil.rmtree(root)
    try:
      os.rename(tmp, root)
    except OSError:
      if not is_intact(root, digest):  # Not a concurrent generator winning the race.
        raise
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return root
