"""What the daemon is doing, as a small JSON file in its state folder.

The service rewrites ``status.json`` (atomically) as photos move through it; ``skinretouch
status`` reads it and checks the single-instance lock to tell a running daemon from a
file left by one that is gone.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, TextIO

from ..atomic import atomic_write_bytes
from ..config import Config
from .paths import resolve_state_dir

__all__ = ["DaemonState", "FolderLock", "InstanceLock", "main_status", "read_status", "write_status"]

STATUS_FILE = "status.json"
LOCK_FILE = "watch.lock"
RECENT_FAILURES = 20


class DaemonState:
    """Counters and recent failures, shared by the worker threads and the main loop."""

    def __init__(self, *, folders: list[Path], config_path: Path | None) -> None:
        self.pid = os.getpid()
        self.started_at = time.time()
        self.phase = "starting"
        self.folders = [str(f) for f in folders]
        self.config_path = str(config_path) if config_path else None
        self.counts: Counter[str] = Counter()
        self.recent_failures: deque[dict[str, Any]] = deque(maxlen=RECENT_FAILURES)
        self.last_reload: dict[str, Any] | None = None
        # hot folder -> what is wrong with it now ("missing since ..."), shown by `status`
        self.folder_problems: dict[str, str] = {}
        self.waiting_to_retry = 0  # photos deferred for a passing reason (disk full...)
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change, so the writer knows when to write

    def record(self, path: Path, status: str, error: str | None) -> None:
        with self._lock:
            self.counts[status] += 1
            if status == "failed":
                self.recent_failures.append({"path": str(path), "error": error, "at": time.time()})
            self.version += 1

    def set_folder_problem(self, folder: Path, problem: str | None) -> None:
        with self._lock:
            if problem is None:
                self.folder_problems.pop(str(folder), None)
            else:
                self.folder_problems[str(folder)] = problem
            self.version += 1

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self.version += 1

    def snapshot(self, *, queued: int, running: list[tuple[str, float]], settling: int) -> dict[str, Any]:
        with self._lock:
            return {
                "pid": self.pid,
                "state": self.phase,
                "started_at": self.started_at,
                "updated_at": time.time(),
                "folders": list(self.folders),
                "config_path": self.config_path,
                "queued": queued,
                "settling": settling,
                "running": [{"path": p, "seconds": round(s, 1)} for p, s in running],
                "done": self.counts["ok"],
                "skipped": self.counts["skipped"],
                "failed": self.counts["failed"],
                "deferred": self.counts["deferred"],
                "waiting_to_retry": self.waiting_to_retry,
                "recent_failures": list(self.recent_failures),
                "last_reload": self.last_reload,
                "folder_problems": dict(self.folder_problems),
            }

    def summary(self, *, queued: int, running: int) -> str:
        """One line for systemd's STATUS=."""
        with self._lock:
            problems = f" (PROBLEM: {'; '.join(f'{k} {v}' for k, v in self.folder_problems.items())})"
            return (
                f"{self.phase}{problems if self.folder_problems else ''}: {queued} queued, {running} running, {self.counts['ok']} done, "
                f"{self.counts['skipped']} skipped, {self.counts['failed']} failed"
            )


def write_status(state_dir: Path, snapshot: dict[str, Any]) -> None:
    """Replace ``status.json`` atomically (readers never see half a file)."""
    atomic_write_bytes(state_dir / STATUS_FILE, (json.dumps(snapshot, indent=1) + "\n").encode("utf-8"))


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class FolderLock:
    """An exclusive ``flock`` on a hot folder itself: one daemon per hot folder.

    Two daemons with different state folders would otherwise both process every photo
    dropped there. The lock is taken on the folder's own descriptor, so nothing is
    written into the hot folder; the kernel drops it when the process dies.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.release()
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class InstanceLock:
    """An exclusive ``flock`` on ``watch.lock``: one daemon per state folder.

    The kernel drops the lock when the process dies, kill -9 included.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid of the daemon holding the lock, or None if nobody holds it."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.read(fd, 32).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def main_status(config: Config, *, stream: TextIO | None = None) -> int:
    """Print what the daemon has queued, running, done and failed.

    Returns 0 when a daemon is running, 1 when none is (the last status, if any, is
    still printed, marked as stale).
    """
    out = stream if stream is not None else sys.stdout
    state_dir = resolve_state_dir(config.daemon)
    holder = InstanceLock(state_dir).holder()
    status = read_status(state_dir)
    if status is None:
        print(f"skinretouch watch: not running (no status in {state_dir})", file=out)
        return 0 if holder else 1
    now = time.time()
    if holder:
        headline = f"running, pid {holder}"
    else:
        headline = f"not running (last status from pid {status.get('pid')}, stale)"
    print(f"skinretouch watch: {headline}", file=out)
    updated = status.get("updated_at", now)
    uptime = (now if holder else updated) - status.get("started_at", updated)
    print(f"  state:    {status.get('state')}  (updated {now - updated:.0f} s ago, "
          f"{'up' if holder else 'ran for'} {_duration(uptime)})", file=out)
    print(f"  folders:  {', '.join(status.get('folders') or []) or '-'}", file=out)
    for folder, problem in (status.get("folder_problems") or {}).items():
        print(f"  PROBLEM:  hot folder {folder} {problem}", file=out)
    print(
        f"  queued:   {status.get('queued', 0)}   settling: {status.get('settling', 0)}   "
        f"running: {len(status.get('running') or [])}",
        file=out,
    )
    print(
        f"  done:     {status.get('done', 0)}   skipped: {status.get('skipped', 0)}   "
        f"failed: {status.get('failed', 0)}",
        file=out,
    )
    if status.get("waiting_to_retry"):
        print(f"  retrying: {status['waiting_to_retry']} photo(s) held back by a passing error "
              "(disk full?); see the log's photo_deferred lines", file=out)
    for item in status.get("running") or []:
        print(f"  running:  {item['path']} ({item['seconds']} s)", file=out)
    failures = status.get("recent_failures") or []
    if failures:
        print("  recent failures:", file=out)
        for item in failures[-10:]:
            print(f"    {item['path']}: {item['error']}", file=out)
    if config.cluster.backend == "celery":
        from ..cluster.status import print_cluster_status

        print_cluster_status(config.cluster, out)
    return 0 if holder else 1


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
