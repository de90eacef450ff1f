"""Fetching one file into the cache: resumable, locked, atomic, hash-checked, or refused offline.

`ensure_file(url, dest, sha256)` returns `dest` once it holds the file:

* Under an exclusive `fcntl` lock on `dest.lock`, so that two processes (or hosts sharing the
  folder) fetching the same file wait for each other; the second finds the file in place.
* Downloaded (http://, https://, file://) into `dest.part` with a tqdm progress bar on stderr. An
  interrupted transfer is resumed with an HTTP Range request from the bytes already in
  `dest.part` (automatically, `retries` times; and on the next run, as the `.part` is kept); a
  server that ignores the Range header (status 200) restarts it.
* Checked before it is moved into place with an atomic rename: its SHA-256 must equal the
  published one (`sha256`) or, when there is none, the one recorded when the file was first
  fetched; then `validate(path)` (e.g. reading the state_dict) must accept it. A file that fails
  either is deleted with a one-line error, so nothing broken is ever cached.
* Its hash is recorded in the sidecar `dest.json` (url, sha256, size, whether the hash was
  published or trusted on first use) and checked again on every later call.
* Offline (`offline=True`, or the environment variable VQA_JAX_OFFLINE=1 via `is_offline`), a
  missing file is an `OfflineError` naming the URL to fetch it from and the path to place it at;
  a file placed there by hand is hashed, validated and recorded like a download.

`source_url(url, file_name)` applies the mirror VQA_JAX_MODELS_MIRROR=URL: every file is fetched
from `URL/<file_name>` (http:// or file://), for clusters without internet access.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import http.client
import json
import os
import sys
import time
from typing import Callable, Iterator
import urllib.error
import urllib.request

from vqa_jax.runtime import progress as progress_lib

OFFLINE_ENV = "VQA_JAX_OFFLINE"
MIRROR_ENV = "VQA_JAX_MODELS_MIRROR"
CHUNK = 1 << 20
PUBLISHED = "published"
TRUST_ON_FIRST_USE = "trust on first use"


class DownloadError(OSError):
  """A file that could not be fetched, or that failed its hash or validation."""


class OfflineError(DownloadError):
  """Offline mode and the file is not in the cache: names what to place where."""


def is_offline(offline: bool | None = None) -> bool:
  """`offline` if given, else whether VQA_JAX_OFFLINE is set to 1 / true / yes."""
  if offline is not None:
    return offline
  return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def source_url(url: str, file_name: str) -> str:
  """`url`, or `$VQA_JAX_MODELS_MIRROR/<file_name>` when the mirror variable is set."""
  mirror = os.environ.get(MIRROR_ENV, "").strip()
  return f"{mirror.rstrip('/')}/{file_name}" if mirror else url


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
  """Holds an exclusive fcntl lock on the file `path` (created) while inside."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "a+b") as f:
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      print(f"waiting for another process holding {path}", file=sys.stderr)
      fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def sha256_of(path: str) -> str:
  """The hex SHA-256 of the file at `path`."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(CHUNK), b""):
      digest.update(block)
  return digest.hexdigest()


def sidecar_path(dest: str) -> str:
  """Where the hash of `dest` is recorded."""
  return dest + ".json"


def recorded(dest: str) -> dict | None:
  """The sidecar record of `dest` ({'url', 'sha256', 'size', 'hash_source', ...}) or None."""
  path = sidecar_path(dest)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise DownloadError(f"{path}: unreadable hash record ({e}); delete it and {dest} to fetch "
                        "again") from e


def _write_record(dest: str, url: str, digest: str, size: int, published: bool) -> None:
  """Writes the sidecar of `dest` atomically."""
  record = {"url": url, "sha256": digest, "size": size,
            "hash_source": PUBLISHED if published else TRUST_ON_FIRST_USE,
            "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
  tmp = sidecar_path(dest) + ".tmp"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, sidecar_path(dest))


def _expected_hash(dest: str, sha256: str | None) -> tuple[str | None, str]:
  """(the hash `dest` must have, where that hash comes from)."""
  if sha256:
    return sha256.lower(), "the published SHA-256"
  record = recorded(dest)
  if record:
    return record["sha256"], f"the SHA-256 recorded at its first download ({sidecar_path(dest)})"
  return None, ""


class _Incomplete(Exception):
  """A transfer that ended before Content-Length bytes arrived."""


def _total_size(response, start: int, resumed: bool) -> int | None:
  """The full file size a response announces (Content-Range of a 206, else Content-Length)."""
  content_range = response.headers.get("Content-Range", "")
  if resumed and "/" in content_range and not content_range.endswith("/*"):
    return int(content_range.rsplit("/", 1)[1])
  length = response.headers.get("Content-Length")
  return None if length is None else int(length) + (start if resumed else 0)


def _transfer(url: str, part: str, show_progress: bool, timeout: float) -> None:
  """One request: appends to `part` from its current size (Range) or rewrites it."""
  start = os.path.getsize(part) if os.path.exists(part) else 0
  headers = {"Range": f"bytes={start}-"} if start else {}
  with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                              timeout=timeout) as response:
    resumed = bool(start) and getattr(response, "status", None) == 206
    total = _total_size(response, start, resumed)
    with open(part, "ab" if resumed else "wb") as f, progress_lib.tqdm_bar(
        total, "B", unit_scale=True, unit_divisor=1024, initial=start if resumed else 0,
        desc=os.path.basename(part)[:-len(".part")], disable=not show_progress) as bar:
      while chunk := response.read(CHUNK):
        f.write(chunk)
        bar.update(len(chunk))
  size = os.path.getsize(part)
  if total is not None and size < total:
    raise _Incomplete(f"connection closed after {size} of {total} bytes")


def download(url: str, part: str, show_progress: bool = True, retries: int = 3,
             retry_wait: float = 1.0, timeout: float = 60.0) -> None:
  """Fetches `url` into `part`, resuming what it holds; a DownloadError when it cannot."""
  last = None
  for attempt in range(retries + 1):
    if attempt:
      time.sleep(retry_wait * attempt)
    try:
      _transfer(url, part, show_progress, timeout)
      return
    except urllib.error.HTTPError as e:
      if e.code == 416 and os.path.exists(part):  # the range starts at or past the end
        os.remove(part)
        last = e
        continue
      raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, http.client.HTTPException, OSError, _Incomplete) as e:
      last = e
  size = os.path.getsize(part) if os.path.exists(part) else 0
  raise DownloadError(f"{url}: download incomplete after {retries + 1} attempts ({last}); "
                      f"{part} keeps the {size} bytes received: run again to resume")


def _check(path: str, dest: str, sha256: str | None,
           validate: Callable[[str], object] | None) -> tuple[str, bool]:
  """(hash, whether it was published) of `path` once it passes the hash and `validate`;
  otherwise a DownloadError (the caller deletes `path`)."""
  digest = sha256_of(path)
  expected, source = _expected_hash(dest, sha256)
  if expected is not None and digest != expected:
    raise DownloadError(f"{path}: SHA-256 {digest} differs from {source}, {expected}: the file is "
                        "damaged or not the expected one")
  if validate is not None:
    try:
      validate(path)
    except Exception as e:  # pylint: disable=broad-exception-caught  (any reader error)
      raise DownloadError(f"{path}: not a usable file ({type(e).__name__}: {e})") from e
  return digest, bool(sha256)


def ensure_file(url: str, dest: str, sha256: str | None = None, offline: bool | None = None,
                show_progress: bool = True, validate: Callable[[str], object] | None = None,
                retries: int = 3, retry_wait: float = 1.0) -> str:
  """`dest`, fetched from `url` first if absent, and its hash checked (see the module doc)."""
  with file_lock(dest + ".lock"):
    if os.path.exists(dest):
      if recorded(dest) is None:  # placed by hand: check it once, then trust what it is
        digest, published = _check(dest, dest, sha256, validate)
        _write_record(dest, url, digest, os.path.getsize(dest), published)
      else:
        _check(dest, dest, sha256, None)
      return dest
    if is_offline(offline):
      raise OfflineError(f"offline ({OFFLINE_ENV}=1 or --offline) and {dest} is missing: "
                         f"download {url} and place it at {dest}")
    part = dest + ".part"
    download(url, part, show_progress, retries, retry_wait)
    try:
      digest, published = _check(part, dest, sha256, validate)
    except DownloadError:
      os.remove(part)
      raise
    _write_record(dest, url, digest, os.path.getsize(part), published)
    os.replace(part, dest)
  return dest
