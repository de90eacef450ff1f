"""`vqa_jax.pretrained.download` against a loopback HTTP server (no internet) and file:// URLs:
resume, hash record and checks, truncation, offline mode, the mirror, concurrent fetches."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests import model_server
from tests import pth_files
from tests.helpers import REPO_ROOT
from vqa_jax.convert import state_dicts
from vqa_jax.pretrained import download

PAYLOAD = pth_files.pth_bytes({"state_dict": {
    "w": np.arange(30000, dtype=np.float32).reshape(100, 300), "b": np.ones(7, np.float32)}})
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def online(monkeypatch):
  """No offline or mirror setting leaks in from the environment."""
  monkeypatch.delenv(download.OFFLINE_ENV, raising=False)
  monkeypatch.delenv(download.MIRROR_ENV, raising=False)


@pytest.fixture
def server():
  with model_server.serve({"/W.pth": PAYLOAD}) as s:
    yield s


def fetch(url, dest, **kwargs):
  """`ensure_file` without a progress bar or retry waits, validating like the registry does."""
  kwargs.setdefault("validate", state_dicts.read_state_dict)
  return download.ensure_file(url, str(dest), show_progress=False, retry_wait=0, **kwargs)


def assert_nothing_cached(dest: pathlib.Path):
  """Neither the file, nor its .part, nor a hash record."""
  for path in (dest, pathlib.Path(f"{dest}.part"), pathlib.Path(f"{dest}.json")):
    assert not path.exists(), path


def test_download_records_the_hash_and_reuses_the_file(server, tmp_path):
  dest = tmp_path / "cache" / "W.pth"
  assert fetch(server.url("/W.pth"), dest) == str(dest)
  assert dest.read_bytes() == PAYLOAD
  record = json.loads(pathlib.Path(f"{dest}.json").read_text())
  assert (record["sha256"], record["size"], record["hash_source"]) == (
      SHA, len(PAYLOAD), download.TRUST_ON_FIRST_USE)
  assert record["url"] == server.url("/W.pth")
  fetch(server.url("/W.pth"), dest)
  assert server.requests == [("/W.pth", None)]  # the second call found it in place


def test_resume_after_the_server_cuts_the_connection(server, tmp_path):
  server.cut_after, server.cut_times = len(PAYLOAD) // 2, 1
  dest = tmp_path / "W.pth"
  fetch(server.url("/W.pth"), dest)
  assert dest.read_bytes() == PAYLOAD
  assert server.requests == [("/W.pth", None), ("/W.pth", f"bytes={len(PAYLOAD) // 2}-")]


def test_an_interrupted_download_resumes_on_the_next_run(server, tmp_path):
  server.cut_after, server.cut_times = 10000, 1
  dest = tmp_path / "W.pth"
  with pytest.raises(download.DownloadError, match=r"incomplete after 1 attempts.*run again"):
    fetch(server.url("/W.pth"), dest, retries=0)
  assert os.path.getsize(f"{dest}.part") == 10000 and not dest.exists()
  fetch(server.url("/W.pth"), dest, retries=0)
  assert dest.read_bytes() == PAYLOAD
  assert server.requests[-1] == ("/W.pth", "bytes=10000-")


def test_a_server_ignoring_range_restarts_the_file(server, tmp_path):
  dest = tmp_path / "W.pth"
  pathlib.Path(f"{dest}.part").write_bytes(b"stale bytes of another attempt")
  server.ignore_range = True
  fetch(server.url("/W.pth"), dest)
  assert dest.read_bytes() == PAYLOAD


def test_connection_always_cut_is_an_error_and_nothing_is_cached(server, tmp_path):
  server.cut_after, server.cut_times = 1000, 99
  dest = tmp_path / "W.pth"
  with pytest.raises(download.DownloadError, match=r"W\.pth: download incomplete after 3 attempts"):
    fetch(server.url("/W.pth"), dest, retries=2)
  assert not dest.exists() and not pathlib.Path(f"{dest}.json").exists()


def test_wrong_published_hash_is_an_error_and_nothing_is_cached(server, tmp_path):
  dest = tmp_path / "W.pth"
  with pytest.raises(download.DownloadError,
                     match=f"SHA-256 {SHA} differs from the published SHA-256, {'0' * 64}"):
    fetch(server.url("/W.pth"), dest, sha256="0" * 64)
  assert_nothing_cached(dest)
  fetch(server.url("/W.pth"), dest, sha256=SHA)  # the right one is accepted and recorded
  assert json.loads(pathlib.Path(f"{dest}.json").read_text())["hash_source"] == download.PUBLISHED


def test_a_file_changed_after_its_first_download_is_refused(server, tmp_path):
  dest = tmp_path / "W.pth"
  fetch(server.url("/W.pth"), dest)
  damaged = bytearray(PAYLOAD)
  damaged[len(PAYLOAD) // 2] ^= 0xFF
  dest.write_bytes(bytes(damaged))
  with pytest.raises(download.DownloadError, match="differs from the SHA-256 recorded at its first"):
    fetch(server.url("/W.pth"), dest)


def test_a_truncated_file_served_as_complete_is_not_cached(tmp_path):
  with model_server.serve({"/W.pth": PAYLOAD[:len(PAYLOAD) // 2]}) as server:
    dest = tmp_path / "W.pth"
    with pytest.raises(download.DownloadError, match=r"W\.pth\.part: not a usable file.*damaged zip"):
      fetch(server.url("/W.pth"), dest)
  assert_nothing_cached(dest)


def test_http_error_names_the_url(server, tmp_path):
  with pytest.raises(download.DownloadError, match=r"/absent\.pth: HTTP 404"):
    fetch(server.url("/absent.pth"), tmp_path / "absent.pth")


def test_offline_names_what_to_place_where(server, tmp_path, monkeypatch):
  dest = tmp_path / "W.pth"
  monkeypatch.setenv(download.OFFLINE_ENV, "1")
  with pytest.raises(download.OfflineError) as error:
    fetch(server.url("/W.pth"), dest)
  assert f"download {server.url('/W.pth')} and place it at {dest}" in str(error.value)
  assert server.requests == []
  dest.write_bytes(PAYLOAD)  # placed by hand: hashed, validated and recorded
  fetch(server.url("/W.pth"), dest)
  assert json.loads(pathlib.Path(f"{dest}.json").read_text())["sha256"] == SHA
  monkeypatch.delenv(download.OFFLINE_ENV)
  with pytest.raises(download.OfflineError):  # the flag alone
    fetch(server.url("/W.pth"), tmp_path / "other.pth", offline=True)


def test_file_urls(tmp_path):
  source = tmp_path / "served" / "W.pth"
  source.parent.mkdir()
  source.write_bytes(PAYLOAD)
  dest = tmp_path / "cache" / "W.pth"
  os.makedirs(dest.parent)
  pathlib.Path(f"{dest}.part").write_bytes(b"stale")  # file:// has no Range: restarted
  fetch(source.as_uri(), dest)
  assert dest.read_bytes() == PAYLOAD
  with pytest.raises(download.DownloadError, match="absent.pth"):
    fetch((tmp_path / "served" / "absent.pth").as_uri(), tmp_path / "absent.pth")


def test_mirror_url(monkeypatch):
  upstream = "https://github.com/o/r/releases/download/v1/FILE.pth"
  assert download.source_url(upstream, "FILE.pth") == upstream
  monkeypatch.setenv(download.MIRROR_ENV, "http://10.0.0.1:8000/models/")
  assert download.source_url(upstream, "FILE.pth") == "http://10.0.0.1:8000/models/FILE.pth"
  monkeypatch.setenv(download.MIRROR_ENV, "file:///srv/models")
  assert download.source_url(upstream, "FILE.pth") == "file:///srv/models/FILE.pth"


_FETCH_SCRIPT = """
import sys
from vqa_jax.pretrained import download
download.ensure_file(sys.argv[1], sys.argv[2], show_progress=False)
print("done")
"""


def test_two_processes_fetching_at_once(server, tmp_path):
  """Both processes end with the whole file; the lock makes the second wait, then reuse it."""
  server.slow = 0.002  # ~120 chunks of 4 KiB: a quarter of a second or more per transfer
  dest = tmp_path / "W.pth"
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *sys.path]))
  procs = [subprocess.Popen([sys.executable, "-c", _FETCH_SCRIPT, server.url("/W.pth"), str(dest)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for _ in range(2)]
  outputs = [p.communicate(timeout=120) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs
  assert dest.read_bytes() == PAYLOAD
  assert json.loads(pathlib.Path(f"{dest}.json").read_text())["sha256"] == SHA
  assert server.requests == [("/W.pth", None)]
  assert not pathlib.Path(f"{dest}.part").exists()
