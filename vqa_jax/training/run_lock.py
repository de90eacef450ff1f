"""One run per workdir: `<workdir>/run.lock` holds the owner's pid and host while it trains.

The lock file is created atomically (O_EXCL); a second trainer on the same workdir fails at once
with `WorkdirLocked` naming the holder. The holder's heartbeat thread touches the file every
`heartbeat_s` seconds. Besides pid and host the file records the kernel's boot id and the holder's
PID namespace, which say whether its pid can be checked here. A lock is stale, and is taken over
with a warning naming the reason, when

* its heartbeat is older than `stale_after_s` (any host, e.g. a node that died on a shared file
  system), or
* it was written on this host name in another boot (a reboot) or another PID namespace (a restarted
  container): its process is gone, and its pid means nothing here, or
* its pid, checkable here (same host, boot and PID namespace), is not running, or is this
  process's own pid while this process does not hold the lock (an earlier process had that pid).

A lock from another host name is judged by its heartbeat alone: a live trainer on another node (or
another container) that shares the file system keeps its workdir. Containers that share a host name
and a workdir must therefore not train on it at the same time. Lock files from before the boot id
and PID namespace were recorded are judged by pid and heartbeat as before. Only the owner removes
its lock on release.
"""

import json
import os
import socket
import threading
import time
import uuid

from absl import logging

LOCK_NAME = "run.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
PID_NAMESPACE_PATH = "/proc/self/ns/pid"
# Tokens of the locks this process holds now: its own pid in a lock file is live only for these.
_HELD_TOKENS = set()


class WorkdirLocked(RuntimeError):
  """The workdir is held by another live run; the message names its pid, host and lock file."""


def lock_path(workdir: str) -> str:
  """The lock file of `workdir`."""
  return os.path.join(workdir, LOCK_NAME)


def read_holder(path: str) -> dict:
  """The holder record of a lock file ({} when it is empty or not JSON: being written, or torn)."""
  try:
    with open(path, encoding="utf-8") as f:
      holder = json.load(f)
  except (OSError, ValueError):
    return {}
  return holder if isinstance(holder, dict) else {}


def pid_running(pid: int) -> bool:
  """Whether a process with this pid exists on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # exists, owned by someone else
  return True


def boot_id() -> str | None:
  """This kernel's boot id (changes at every boot), or None where the system does not say."""
  try:
    with open(BOOT_ID_PATH, encoding="ascii") as f:
      return f.read().strip() or None
  except OSError:
    return None


def pid_namespace() -> str | None:
  """This process's PID namespace, e.g. 'pid:[4026531836]'; None where the system does not say."""
  try:
    return os.readlink(PID_NAMESPACE_PATH)
  except OSError:
    return None


def this_process() -> dict:
  """The fields of a lock record that say where its pid lives: pid, host, boot id, PID namespace."""
  return {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": boot_id(),
          "pid_namespace": pid_namespace()}


def _differs(holder: dict, here: dict, key: str) -> bool:
  """Whether `key` is known on both sides and differs (old lock files lack boot id, namespace)."""
  return holder.get(key) is not None and here[key] is not None and holder[key] != here[key]


def stale_reason(holder: dict, age_s: float, stale_after_s: float) -> str:
  """Why a lock with this holder and heartbeat age is stale, or '' while its holder may be alive."""
  here = this_process()
  if age_s > stale_after_s:
    return f"no heartbeat for {age_s:.0f} s"
  if holder.get("host") != here["host"]:
    return ""  # another node or container: its pid cannot be checked here, only its heartbeat
  if _differs(holder, here, "boot_id"):
    return (f"it was written on this host in an earlier boot (boot id {holder['boot_id']}, now "
            f"{here['boot_id']}): its process is gone")
  if _differs(holder, here, "pid_namespace"):
    return (f"it was written in another PID namespace ({holder['pid_namespace']}, this process: "
            f"{here['pid_namespace']}), e.g. before a container restart: its pid means nothing "
            f"here")
  pid = holder.get("pid")
  if not isinstance(pid, int):
    return ""
  if pid == here["pid"] and holder.get("token") not in _HELD_TOKENS:
    return (f"pid {pid} is this process's own, which does not hold the lock: an earlier process "
            f"had it")
  if pid != here["pid"] and not pid_running(pid):
    return f"pid {pid} is not running"
  return ""


class WorkdirLock:
  """Context manager holding `<workdir>/run.lock` (see the module docstring)."""

  def __init__(self, workdir: str, heartbeat_s: float = HEARTBEAT_S,
               stale_after_s: float = STALE_AFTER_S):
    self.path = lock_path(workdir)
    self.heartbeat_s = heartbeat_s
    self.stale_after_s = stale_after_s
    self.record = {**this_process(), "started": time.time(), "token": uuid.uuid4().hex}
    self._stop = threading.Event()
    self._thread = None

  def acquire(self) -> None:
    """Creates the lock file, taking over a stale one; raises WorkdirLocked if a live run holds it."""
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    for _ in range(3):  # a stale lock removed by us (or by a racing taker) gives way to a retry
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        fd = None
      if fd is None:  # outside the except block: a WorkdirLocked traceback shows only itself
        self._handle_existing()
        continue
      with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(self.record, f)
      _HELD_TOKENS.add(self.record["token"])
      self._thread = threading.Thread(target=self._beat, name="run-lock-heartbeat", daemon=True)
      self._thread.start()
      return
    raise WorkdirLocked(f"could not take {self.path}: other runs keep creating it")

  def _handle_existing(self) -> None:
    """Removes a stale lock (warning) or raises WorkdirLocked naming the live holder."""
    holder = read_holder(self.path)
    try:
      age = time.time() - os.path.getmtime(self.path)
    except FileNotFoundError:
      return  # released meanwhile: retry
    reason = stale_reason(holder, age, self.stale_after_s)
    if not reason:
      started = time.strftime("%Y-%m-%d %H:%M:%S",
                              time.localtime(holder.get("started", time.time())))
      raise WorkdirLocked(
          f"workdir {os.path.dirname(self.path)} is in use by pid {holder.get('pid', '?')} on host "
          f"{holder.get('host', '?')} (since {started}, heartbeat {age:.0f} s ago): one run per "
          f"workdir. Use another --workdir, or stop that run; a lock whose run is gone is taken "
          f"over automatically ({self.path})")
    logging.warning("taking over the stale lock %s of pid %s on host %s: %s", self.path,
                    holder.get("pid", "?"), holder.get("host", "?"), reason)
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass

  def _beat(self) -> None:
    """Touches the lock file every heartbeat_s seconds until released."""
    while not self._stop.wait(self.heartbeat_s):
      try:
        os.utime(self.path)
      except OSError:
        pass

  def release(self) -> None:
    """Stops the heartbeat and removes the lock file if it is still this run's."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    _HELD_TOKENS.discard(self.record["token"])
    if read_holder(self.path) == self.record:
      os.remove(self.path)

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc_info):
    self.release()
