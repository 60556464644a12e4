"""Catch-up scans: photos dropped while the daemon was down, or events it had to drop.

A scan never hashes photos. It skips a photo whose report is newer than the photo's
last change (``st_ctime``, which copying with preserved times or renaming into place
still updates), and leaves the sha256 check to the pipeline for everything else.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..logs import get_logger
from .paths import HotFolders, is_our_temp_name

__all__ = ["Scanner", "iter_photos", "looks_done", "remove_stale_temps"]

log = get_logger(__name__)


def iter_photos(folders: HotFolders, start: Path) -> Iterator[tuple[Path, Path, os.stat_result]]:
    """Yield ``(path, root, stat)`` for every photo at or below ``start``, lazily."""
    stack = [start]
    while stack:
        directory = stack.pop()
        if not folders.walks_into(directory):
            continue
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            log.warning("scan_unreadable_folder", folder=str(directory), error=exc.strerror)
            continue
        entries.sort(key=lambda e: e.name)
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                    continue
                # FIFOs, devices and symlinks with a photo's name are yielded too: the
                # worker refuses them with a report that says why, as it does for events.
                root = folders.accepts(path)
                if root is not None:
                    yield path, root, entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while we looked


def looks_done(folders: HotFolders, path: Path, root: Path, stat: os.stat_result) -> bool:
    """True if ``path`` has a report written after the photo last changed."""
    try:
        report = os.stat(folders.report_path(path, root))
    except OSError:
        return False
    return report.st_mtime_ns >= stat.st_ctime_ns


def remove_stale_temps(folders: HotFolders) -> list[Path]:
    """Delete our own ``.NAME.*.tmp`` files below the hot and output folders.

    Called only at start, while holding the single-instance lock: any such file was
    left by a crash (kill -9, power loss) of an earlier run.
    """
    starts = list(folders.roots)
    if folders.output_dir is not None and folders.output_dir.is_dir():
        starts.append(folders.output_dir)
    removed = []
    for start in starts:
        for directory, dirnames, filenames in os.walk(start):
            if not folders.recursive and Path(directory) != start:
                dirnames.clear()
            for name in filenames:
                if is_our_temp_name(name):
                    stale = Path(directory) / name
                    try:
                        stale.unlink()
                        removed.append(stale)
                    except OSError as exc:
                        log.warning("stale_temp_not_removed", path=str(stale), error=exc.strerror)
    for path in removed:
        log.info("stale_temp_removed", path=str(path))
    return removed


class Scanner(threading.Thread):
    """Runs scan requests one after another on its own thread.

    Photos that have not changed for ``settle_s`` go to ``enqueue`` (which may block:
    that is the back-pressure); younger ones to ``track`` (the settle tracker).

    Parameters
    ----------
    folders : HotFolders
    settle_s : float
        Seconds a photo must be unchanged to count as completely written.
    enqueue : callable(path, root, seen_at) -> bool
        Blocking; False means the daemon is stopping.
    track : callable(path, root)
    stop : threading.Event
    """

    def __init__(
        self,
        folders: HotFolders,
        *,
        settle_s: float,
        enqueue: Callable[[Path, Path, float], bool],
        track: Callable[[Path, Path], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name="skinretouch-scanner", daemon=True)
        self.folders = folders
        self.settle_s = settle_s
        self._enqueue = enqueue
        self._track = track
        self._stop = stop
        self._requests: list[Path] = []
        self._cond = threading.Condition()
        self._busy = False
        self.scans_done = 0
        self.photos_found = 0

    def request(self, start: Path | None = None) -> None:
        """Scan ``start`` (a folder), or every hot folder when None."""
        targets = list(self.folders.roots) if start is None else [start]
        with self._cond:
            for target in targets:
                if target not in self._requests:
                    self._requests.append(target)
            self._cond.notify_all()

    def is_idle(self) -> bool:
        with self._cond:
            return not self._requests and not self._busy

    def run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._requests:
                    self._cond.wait(0.2)
                    continue
                start = self._requests.pop(0)
                self._busy = True
            try:
                self._scan(start)
            except Exception:  # a scan bug must not stop the daemon
                log.exception("scan_failed", folder=str(start))
            finally:
                with self._cond:
                    self._busy = False
                    self.scans_done += 1

    def _scan(self, start: Path) -> None:
        started = time.monotonic()
        queued = skipped = tracked = 0
        for path, root, stat in iter_photos(self.folders, start):
            if self._stop.is_set():
                return
            if looks_done(self.folders, path, root, stat):
                skipped += 1
                continue
            age_s = time.time() - stat.st_mtime
            if age_s >= self.settle_s:
                if not self._enqueue(path, root, time.time()):
                    return
                queued += 1
            else:
                self._track(path, root)
                tracked += 1
        self.photos_found += queued + tracked
        log.info(
            "scan_done",
            folder=str(start),
            queued=queued,
            settling=tracked,
            already_done=skipped,
            seconds=round(time.monotonic() - started, 3),
        )
