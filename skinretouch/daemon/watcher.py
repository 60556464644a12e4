"""Hot-folder events → "this photo is completely written".

With inotify (Linux, local disks) a photo is complete on close-after-write
(``on_closed``) or when it is renamed into place (``on_moved``, e.g. from ``*.part``).
Files that appear without a close we saw (moved in from outside the watched tree,
written in a new folder before its watch existed, or everything under
``PollingObserver``, which network shares need because inotify misses writes made on
other machines) go to the :class:`SettleTracker`: taken once size and mtime have not
changed for ``settle_s``. Under inotify a tracked file is also not taken while a writer
has it open (opens and closes are counted, and a write seen after the watch began
means its close will be reported too), so a writer pausing longer than ``settle_s`` is
waited for.

watchdog calls the handler on its dispatcher thread while holding its lock, so the
handler only filters and hands paths on; it never blocks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ..logs import get_logger
from .paths import HotFolders

__all__ = ["SettleTracker", "Watcher", "make_observer"]

log = get_logger(__name__)

# A tracked file still open for writing is taken anyway after this long without a change
# (a missed close must not keep a photo waiting for ever).
OPEN_FILE_PATIENCE_S = 120.0

# Under inotify, how many times settle_s a file waits when no writer was ever seen on it.
UNSEEN_WRITER_FACTOR = 5.0

# Submit = (path, root, seen_at) -> None
Submit = Callable[[Path, Path, float], None]


class SettleTracker(threading.Thread):
    """Takes a file once its size and mtime have been stable for ``settle_s`` seconds.

    Parameters
    ----------
    settle_s : float
        Seconds without a change in size or mtime.
    submit : callable(path, root, seen_at) -> bool
        Non-blocking; False (queue full) keeps the file tracked and retries later.
    stop : threading.Event
    max_tracked : int
        Files tracked at once; past it new ones are dropped and ``overflowed`` is set
        (the service then rescans), so memory stays bounded.

    Attributes
    ----------
    unseen_writer_factor : float
        Under inotify, a file nobody has been seen opening (it was created before the
        watch on its new folder existed, or found by a scan) may still have a writer we
        cannot see: it must be stable ``unseen_writer_factor * settle_s`` seconds.
        1 under polling, where no open is ever seen.
    """

    def __init__(
        self,
        *,
        settle_s: float,
        submit: Callable[[Path, Path, float], bool],
        stop: threading.Event,
        max_tracked: int = 4096,
    ) -> None:
        super().__init__(name="skinretouch-settle", daemon=True)
        self.settle_s = settle_s
        self.tick_s = min(0.5, max(0.05, settle_s / 4))
        self._submit = submit
        self._stop = stop
        self._max = max_tracked
        # path -> (root, (size, mtime_ns) or None, monotonic time of the last change)
        self._files: dict[Path, tuple[Path, tuple[int, int] | None, float]] = {}
        # path -> opens minus closes seen (inotify only): a writer still has it open
        self._open: dict[Path, int] = {}
        # tracked files seen opened, or written to, since tracking began (inotify only)
        self._seen_open: set[Path] = set()
        self.unseen_writer_factor = 1.0
        self._lock = threading.Lock()
        self.overflowed = threading.Event()

    def note(self, path: Path, root: Path) -> None:
        """Start tracking ``path`` (or restart its clock if tracked: it just changed)."""
        with self._lock:
            if path not in self._files and len(self._files) >= self._max:
                self.overflowed.set()
                return
            self._files[path] = (root, None, time.monotonic())

    def touch(self, path: Path, *, writer_open: bool = False) -> None:
        """``path`` changed: restart its clock if it is tracked.

        ``writer_open``: the change came from an inotify ``IN_MODIFY``, so a writer has
        the file open now and its close will be reported; wait for that close.
        """
        with self._lock:
            entry = self._files.get(path)
            if entry is not None:
                self._files[path] = (entry[0], entry[1], time.monotonic())
                if writer_open:
                    self._open[path] = max(1, self._open.get(path, 0))
                    self._seen_open.add(path)

    def discard(self, path: Path) -> None:
        with self._lock:
            self._files.pop(path, None)
            self._open.pop(path, None)
            self._seen_open.discard(path)

    def opened(self, path: Path) -> None:
        """Someone opened ``path`` (inotify ``IN_OPEN``); counted while it is tracked."""
        with self._lock:
            if path in self._files:
                self._open[path] = self._open.get(path, 0) + 1
                self._seen_open.add(path)

    def closed(self, path: Path) -> None:
        with self._lock:
            count = self._open.get(path, 0) - 1
            if count > 0:
                self._open[path] = count
            else:
                self._open.pop(path, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    def run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.check()
            except Exception:
                log.exception("settle_check_failed")

    def check(self) -> None:
        """One pass: submit settled files, forget vanished ones."""
        with self._lock:
            snapshot = list(self._files.items())
        now = time.monotonic()
        for path, (root, signature, changed_at) in snapshot:
            try:
                stat = os.lstat(path)  # a link is judged (and refused) as itself, never followed
            except OSError:
                self.discard(path)
                continue
            current = (stat.st_size, stat.st_mtime_ns)
            if current != signature:
                with self._lock:
                    if path in self._files:
                        self._files[path] = (root, current, now if signature is not None else changed_at)
                if signature is not None:
                    continue
            with self._lock:
                still_open = self._open.get(path, 0) > 0
                seen_open = path in self._seen_open
            settle_s = self.settle_s if seen_open else self.settle_s * self.unseen_writer_factor
            if now - changed_at < settle_s:
                continue
            if still_open and now - changed_at < max(OPEN_FILE_PATIENCE_S, 10 * self.settle_s):
                continue  # a paused writer; its close will submit it
            if self._submit(path, root, time.time()):
                with self._lock:
                    entry = self._files.get(path)
                    if entry is not None and entry[2] == changed_at:
                        del self._files[path]
                        self._open.pop(path, None)
                        self._seen_open.discard(path)


class _HotFolderHandler(FileSystemEventHandler):
    def __init__(
        self,
        folders: HotFolders,
        *,
        polling: bool,
        submit: Submit,
        tracker: SettleTracker,
        scan: Callable[[Path], None],
    ) -> None:
        self.folders = folders
        self.polling = polling
        self._submit = submit
        self._tracker = tracker
        self._scan = scan

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._route(event)
        except Exception:  # an exception here would kill watchdog's dispatcher thread
            log.exception("event_handling_failed", event=repr(event))

    def _route(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileOpenedEvent):
            self._tracker.opened(_path(event.src_path))
        elif isinstance(event, FileClosedNoWriteEvent):
            self._tracker.closed(_path(event.src_path))
        elif isinstance(event, FileClosedEvent):
            self._complete(_path(event.src_path))
        elif isinstance(event, FileMovedEvent):
            # With full events, src is empty for a file moved in from outside the tree
            # and dest is empty for one moved out.
            if event.src_path:
                self._tracker.discard(_path(event.src_path))
            if event.dest_path:
                self._complete(_path(event.dest_path))
        elif isinstance(event, FileCreatedEvent):
            self._settle(_path(event.src_path))
        elif isinstance(event, FileModifiedEvent):
            path = _path(event.src_path)
            if self.polling:
                self._settle(path)
            else:
                self._tracker.touch(path, writer_open=True)
        elif isinstance(event, (DirCreatedEvent, DirMovedEvent)):
            target = event.dest_path if isinstance(event, DirMovedEvent) else event.src_path
            if not target:
                return  # a folder moved out of the tree
            directory = _path(target)
            if self.folders.walks_into(directory):
                # Files written before the new folder's watch existed gave no close event.
                self._scan(directory)

    def _complete(self, path: Path) -> None:
        root = self.folders.accepts(path)
        if root is None:
            return
        if self.polling:
            # Polling sees no close; a rename may still be followed by writes elsewhere.
            self._tracker.note(path, root)
            return
        self._tracker.discard(path)
        self._submit(path, root, time.time())

    def _settle(self, path: Path) -> None:
        root = self.folders.accepts(path)
        if root is not None:
            self._tracker.note(path, root)


def _path(raw: str | bytes) -> Path:
    return Path(os.fsdecode(raw))


def make_observer(kind: str, *, poll_interval_s: float) -> tuple[BaseObserver, bool]:
    """An observer for ``kind`` ("auto", "inotify" or "polling") and whether it polls.

    "auto" uses inotify where it works and falls back to polling (with a warning);
    "inotify" fails if it is not available.
    """
    if kind == "polling":
        return PollingObserver(timeout=poll_interval_s), True
    try:
        from watchdog.observers.inotify import InotifyObserver
    except (ImportError, OSError) as exc:
        if kind == "inotify":
            raise OSError(f"inotify is not available here: {exc}") from exc
        log.warning("inotify_unavailable_polling", reason=str(exc))
        return PollingObserver(timeout=poll_interval_s), True
    # Full events: a file moved in from outside arrives as a move (complete), not as a
    # creation (which may still be written to).
    return InotifyObserver(generate_full_events=True), False


class Watcher:
    """Observers on every hot folder feeding ``submit`` (complete files) and the tracker.

    Used as a context manager: the observer runs inside the ``with`` block.
    """

    def __init__(
        self,
        folders: HotFolders,
        *,
        observer_kind: str,
        poll_interval_s: float,
        submit: Submit,
        tracker: SettleTracker,
        scan: Callable[[Path], None],
    ) -> None:
        self.folders = folders
        self.poll_interval_s = poll_interval_s
        self.observer, self.polling = make_observer(observer_kind, poll_interval_s=poll_interval_s)
        self.tracker = tracker
        self.handler = _HotFolderHandler(
            folders, polling=self.polling, submit=submit, tracker=tracker, scan=scan
        )

    def start(self) -> None:
        # A hot folder missing right now is watched again once the service sees it back.
        roots = [root for root in self.folders.roots if root.is_dir()]
        try:
            for root in roots:
                self.observer.schedule(self.handler, str(root), recursive=self.folders.recursive)
            self.observer.start()
        except OSError as exc:
            if self.polling:
                raise
            # e.g. fs.inotify.max_user_watches reached: keep working, by polling.
            log.warning("inotify_failed_polling", reason=str(exc))
            self.observer = PollingObserver(timeout=self.poll_interval_s)
            self.polling = self.handler.polling = True
            for root in roots:
                self.observer.schedule(self.handler, str(root), recursive=self.folders.recursive)
            self.observer.start()
        self.tracker.unseen_writer_factor = 1.0 if self.polling else UNSEEN_WRITER_FACTOR
        log.info(
            "watching",
            folders=[str(r) for r in roots],
            observer="polling" if self.polling else "inotify",
            recursive=self.folders.recursive,
        )

    def stop(self, timeout: float = 5.0) -> None:
        self.observer.stop()
        self.observer.join(timeout)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
