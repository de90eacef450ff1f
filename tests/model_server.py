"""A loopback HTTP server (127.0.0.1) with Range support and scripted failures, for download tests.

`serve({'/NAME': bytes})` runs a `ThreadingHTTPServer` in a thread. Per request it honours
`Range: bytes=N-` (206 with Content-Range), and the server's knobs script failures: `cut_after`
(the first `cut_times` responses stop after that many body bytes and close the connection, having
announced the full length), `slow` (seconds between 4 KiB chunks), `ignore_range` (always 200).
`requests` records (path, Range header) of each request.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from typing import Iterator


class Handler(http.server.BaseHTTPRequestHandler):
  """GET with `Range: bytes=N-`; a 404 for unknown paths."""

  def log_message(self, *args):  # quiet
    pass

  def do_GET(self):  # pylint: disable=invalid-name
    server = self.server
    with server.lock:
      server.requests.append((self.path, self.headers.get("Range")))
      cut = server.cut_times > 0 and server.cut_after is not None
      server.cut_times -= cut
    body = server.files.get(self.path)
    if body is None:
      self.send_error(404, "no such file")
      return
    start = 0
    requested = self.headers.get("Range", "")
    if requested.startswith("bytes=") and not server.ignore_range:
      start = int(requested[len("bytes="):].split("-")[0])
      if start >= len(body):
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{len(body)}")
        self.end_headers()
        return
      self.send_response(206)
      self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
    else:
      self.send_response(200)
    self.send_header("Content-Length", str(len(body) - start))
    self.end_headers()
    payload = body[start:start + server.cut_after] if cut else body[start:]
    for i in range(0, len(payload), 4096):
      self.wfile.write(payload[i:i + 4096])
      if server.slow:
        time.sleep(server.slow)
    self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
  """The server and its scripted behaviour."""

  daemon_threads = True

  def __init__(self, files: dict[str, bytes]):
    super().__init__(("127.0.0.1", 0), Handler)
    self.files = dict(files)
    self.lock = threading.Lock()
    self.requests: list[tuple[str, str | None]] = []
    self.cut_after: int | None = None
    self.cut_times = 0
    self.slow = 0.0
    self.ignore_range = False

  def url(self, path: str) -> str:
    """The http:// URL of `path` on this server."""
    return f"http://127.0.0.1:{self.server_address[1]}{path}"


@contextlib.contextmanager
def serve(files: dict[str, bytes]) -> Iterator[Server]:
  """A running `Server` of `files` (path -> bytes), shut down on exit."""
  server = Server(files)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield server
  finally:
    server.shutdown()
    server.server_close()
    thread.join()
