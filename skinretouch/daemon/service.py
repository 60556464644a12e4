"""The daemon's lifecycle: start, watch, reload on SIGHUP, stop gracefully on SIGTERM.

watcher → :class:`JobQueue` → :class:`WorkerSlot` (one child process each). The main
thread only waits for signals (through ``signal.set_wakeup_fd``), keeps systemd
informed and rewrites the status file; it never blocks on a photo.

Stopping: the watcher and the scanner stop, the queue is closed (waiting photos stay
where they are and are caught up on the next start), and each worker finishes its
current photo. Past ``daemon.grace_s`` the remaining workers are killed and the
temporaries of their outputs removed, so nothing half-written remains; the exit code is
still 0.
"""

from __future__ import annotations

import dataclasses
import math
import os
import select
import shutil
import signal
import socket
import stat
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from ..config import Config, load_config
from ..errors import ConfigError
from ..files.outcome import FileOutcome
from ..logs import get_logger
from ..sidecars import output_paths
from .dispatch import start_dispatchers
from .paths import HotFolders, resolve_state_dir
from .queue import Job, JobQueue, Offer
from .scan import Scanner, looks_done, remove_stale_temps
from .sdnotify import Notifier, WatchdogPinger, watchdog_interval_s
from .status import DaemonState, FolderLock, InstanceLock, write_status
from .watcher import SettleTracker, Watcher
from .worker import DEFAULT_RETOUCHER, WorkerSlot, write_failed_report

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "HotFolderService", "run_watch"]

log = get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # --once: at least one photo failed; or the pipeline cannot load
EXIT_USAGE = 2  # bad folders or configuration, or another daemon holds the state folder

# A photo that could not be finished for a passing reason (disk full, a worker killed
# from outside) is tried again after RETRY_FIRST_S, doubling up to RETRY_MAX_S; it is
# never given a final "failed" report for it.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 300.0
# A photo whose worker died this many times is the photo's fault (a decoder crash).
CRASHES_BEFORE_FAILED = 2
ROOT_CHECK_INTERVAL_S = 1.0  # how often the hot folders themselves are checked to still be there
STATUS_WRITE_INTERVAL_S = 0.5
STATUS_REFRESH_S = 2.0  # rewrite even without changes, so "running for N s" stays true
MAIN_TICK_S = 0.25
# Config sections the pipeline does not read; a change in them alone keeps the workers.
_DAEMON_ONLY_SECTIONS = {"daemon", "logging"}
_RESTART_ONLY_FIELDS = ("workers", "queue_size", "state_dir")


class StartupError(Exception):
    """The daemon cannot start; the message says why (exit code 2)."""


def _resolve_roots(config: Config, cli_folders: list[Path]) -> list[Path]:
    roots = [Path(f) for f in cli_folders] or [Path(f) for f in config.daemon.folders]
    if not roots:
        raise StartupError("no hot folder: give DIR on the command line or set daemon.folders")
    resolved = []
    for root in roots:
        path = root.expanduser().resolve()
        if not path.is_dir():
            raise StartupError(f"hot folder {root} does not exist or is not a folder")
        resolved.append(path)
    return resolved


def _not_a_folder(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder, or None if it can."""
    probe = path
    while True:
        try:
            info = os.stat(probe)
        except FileNotFoundError:
            if probe.parent == probe:
                return None
            probe = probe.parent
            continue
        except OSError as exc:
            return f"{probe}: {exc.strerror}"
        if stat.S_ISDIR(info.st_mode):
            return None
        if probe == path:
            return "is a file, not a folder"
        return f"cannot be a folder: {probe} is a file"


def _check_daemon_folders(config: Config, state_dir: Path) -> None:
    """``output_dir``, ``failed_dir`` and the state folder must be folders, or creatable."""
    daemon = config.daemon
    for key, value in (("output_dir", daemon.output_dir), ("failed_dir", daemon.failed_dir)):
        if value:
            problem = _not_a_folder(Path(value).expanduser())
            if problem:
                raise StartupError(f"daemon.{key} = {value!r} {problem}")
    problem = _not_a_folder(state_dir)
    if problem:
        shown = repr(daemon.state_dir) if daemon.state_dir else f"(default {str(state_dir)!r})"
        raise StartupError(f"daemon.state_dir = {shown} {problem}")


def _folder_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder at ``path``, or None if there is no folder there."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


class HotFolderService:
    """The hot-folder daemon, as a context manager around :meth:`run`.

    Parameters
    ----------
    config : Config
    folders : list of Path
        Hot folders from the command line; empty: ``daemon.folders``.
    once : bool
        Process what is there (waiting for files still being written), then exit.
    config_path : Path, optional
        Re-read on SIGHUP.
    retoucher_factory : str
        ``"module:attribute"`` of a callable ``(Config) -> retoucher`` run in each worker
        process; tests inject a fake pipeline here.
    """

    def __init__(
        self,
        config: Config,
        folders: list[Path],
        *,
        once: bool = False,
        config_path: Path | None = None,
        retoucher_factory: str = DEFAULT_RETOUCHER,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.cli_folders = list(folders)
        self.once = once
        self.config_path = config_path
        self.retoucher_factory = retoucher_factory
        self.notifier = notifier if notifier is not None else Notifier()
        self._owns_notifier = notifier is None
        self.roots = _resolve_roots(config, self.cli_folders)
        self.state_dir = resolve_state_dir(config.daemon)
        _check_daemon_folders(config, self.state_dir)
        self.folders = HotFolders.from_config(self.roots, config.daemon, state_dir=self.state_dir)
        self.state = DaemonState(folders=self.roots, config_path=config_path)
        self.queue = JobQueue(config.daemon.queue_size)
        self.lock = InstanceLock(self.state_dir)
        self.folder_locks: dict[Path, FolderLock] = {}
        # hot folder -> identity of the folder being watched (None: missing right now)
        self._root_ids: dict[Path, tuple[int, int] | None] = {r: _folder_identity(r) for r in self.roots}
        self._roots_checked_at = 0.0
        # path -> (monotonic time due, job, attempts so far): photos waiting to be retried
        self._retries: dict[Path, tuple[float, Job, int]] = {}
        self._crashes: dict[Path, int] = {}
        self._retry_lock = threading.Lock()
        self.stop_event = threading.Event()  # stops the scanner and the settle tracker
        self.abandon_event = threading.Event()  # grace time over: kill running photos
        self.overflowed = threading.Event()
        self.slots: list = []  # local worker slots, or the cluster dispatcher
        self.watcher: Watcher | None = None
        self.tracker: SettleTracker | None = None
        self.scanner: Scanner | None = None
        self.pinger: WatchdogPinger | None = None
        self.fatal: str | None = None
        self.fatal_code = EXIT_FAILED
        self._heartbeat = time.monotonic()
        self._pending_signals: deque[int] = deque()  # appended from other threads too
        self._signal_socket: socket.socket | None = None
        self._signal_writer: socket.socket | None = None
        self._saved_handlers: dict[int, Any] = {}
        self._saved_wakeup_fd: int | None = None
        self._status_version_written = -1
        self._status_running_written: frozenset[str] = frozenset()
        self._status_written_at = 0.0
        self._last_summary = ""

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> HotFolderService:
        if not self.lock.acquire():
            holder = self.lock.holder()
            raise StartupError(
                f"another skinretouch watch (pid {holder}) uses the state folder {self.state_dir}; "
                "set daemon.state_dir to run a second one"
            )
        try:
            self._lock_folders(self.roots)
        except StartupError:
            self.lock.release()
            raise
        self._install_signal_handlers()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._shutdown()
        finally:
            self._restore_signal_handlers()
            for folder_lock in self.folder_locks.values():
                folder_lock.release()
            self.lock.release()
            if self._owns_notifier:
                self.notifier.close()

    def _lock_folders(self, roots: list[Path]) -> None:
        """Hold the lock of every hot folder in ``roots`` (and only those)."""
        for root in roots:
            if root in self.folder_locks:
                continue
            folder_lock = FolderLock(root)
            if not folder_lock.acquire():
                raise StartupError(
                    f"another skinretouch watch already processes the hot folder {root}; "
                    "one daemon per hot folder"
                )
            self.folder_locks[root] = folder_lock
        for root in [r for r in self.folder_locks if r not in roots]:
            self.folder_locks.pop(root).release()

    # -- signals ---------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded use (tests): the caller stops us with request_stop()
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._signal_socket, self._signal_writer = reader, writer
        self._saved_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            # The handler itself does nothing: the wakeup fd carries the signal number
            # to the main loop, which acts on it outside signal context.
            self._saved_handlers[signum] = signal.signal(signum, _ignore_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._saved_handlers.items():
            signal.signal(signum, handler)
        self._saved_handlers.clear()
        if self._saved_wakeup_fd is not None:
            signal.set_wakeup_fd(self._saved_wakeup_fd)
            self._saved_wakeup_fd = None
        for sock in (self._signal_socket, self._signal_writer):
            if sock is not None:
                sock.close()
        self._signal_socket = self._signal_writer = None

    def request_stop(self) -> None:
        """Ask the main loop to stop, as SIGTERM does (from any thread)."""
        self._post(signal.SIGTERM)

    def request_reload(self) -> None:
        """Ask the main loop to reload the config, as SIGHUP does (from any thread)."""
        self._post(signal.SIGHUP)

    def _post(self, signum: int) -> None:
        self._pending_signals.append(signum)  # seen within one tick of the main loop

    def _wait_for_signals(self, timeout: float) -> list[int]:
        if self._signal_socket is not None:
            ready, _, _ = select.select([self._signal_socket], [], [], timeout)
            if ready:
                try:
                    received = self._signal_socket.recv(64)
                except BlockingIOError:
                    received = b""
                signals = set(received)
                while self._pending_signals:
                    signals.add(self._pending_signals.popleft())
                return sorted(signals)
        else:
            time.sleep(timeout)
        signals = set()
        while self._pending_signals:
            signals.add(self._pending_signals.popleft())
        return sorted(signals)

    # -- submission (called from other threads) --------------------------------------
    def _job(self, path: Path, root: Path, seen_at: float, *, source: str, force: bool) -> Job:
        return Job(
            path=path,
            root=root,
            out_dir=self.folders.out_dir_for(path, root),
            force=force,
            source=source,  # type: ignore[arg-type]
            seen_at=seen_at,
        )

    def _submit_event(self, path: Path, root: Path, seen_at: float) -> None:
        job = self._job(path, root, seen_at, source="event", force=self.config.daemon.force)
        if self.queue.offer(job) is Offer.FULL:
            # Never block watchdog's thread: drop the event and rescan once there is room.
            self.overflowed.set()

    def _submit_settled(self, path: Path, root: Path, seen_at: float) -> bool:
        try:
            if not self.config.daemon.force and looks_done(self.folders, path, root, os.lstat(path)):
                return True  # seen by a scan and by an event: already handled
        except OSError:
            return True  # gone
        job = self._job(path, root, seen_at, source="settle", force=self.config.daemon.force)
        return self.queue.offer(job) is not Offer.FULL

    def _enqueue_scanned(self, path: Path, root: Path, seen_at: float) -> bool:
        job = self._job(path, root, seen_at, source="scan", force=False)
        return self.queue.put(job, stop=self.stop_event) is not Offer.CLOSED

    def _track(self, path: Path, root: Path) -> None:
        assert self.tracker is not None
        self.tracker.note(path, root)

    # -- worker callbacks ------------------------------------------------------------
    def _precheck(self, job: Job) -> str | None:
        """Why ``job`` need not reach the pipeline, if it need not."""
        try:
            info = os.lstat(job.path)
        except FileNotFoundError:
            return "vanished before its turn"
        except OSError:
            return None  # let the pipeline report it
        # A close event means new content: only the pipeline's sha256 check may skip it.
        # A scan or settle job can be a second sighting of a photo handled meanwhile.
        if job.source in ("scan", "settle") and not job.force and looks_done(self.folders, job.path, job.root, info):
            return "report newer than the photo"
        return None

    def _on_outcome(self, job: Job, outcome: FileOutcome, seconds: float) -> None:
        status, error = outcome.status, outcome.error
        if status == "crashed":
            with self._retry_lock:  # outcomes arrive on every worker's thread
                crashes = self._crashes[job.path] = self._crashes.get(job.path, 0) + 1
            if crashes >= CRASHES_BEFORE_FAILED:
                settings = next((slot.report_settings for slot in self.slots if slot.report_settings), {})
                report = write_failed_report(job, error or "the worker process died", settings)
                outcome = dataclasses.replace(outcome, status="failed", report_path=report)
                status = "failed"
            else:
                status = "deferred"
        if status == "deferred":
            self._defer(job, error)
            return
        with self._retry_lock:
            self._crashes.pop(job.path, None)
            self._retries.pop(job.path, None)
        moved_to = None
        if status == "failed" and self.folders.failed_dir is not None:
            moved_to = self._move_failed(job, outcome.report_path)
        if status == "skipped" and not outcome.reason and outcome.report_path:
            # The pipeline found the same sha256: mark the report as checked now, so the
            # next catch-up scan's cheap ctime test skips this photo without hashing it.
            try:
                os.utime(outcome.report_path)
            except OSError:
                pass
        self.state.record(job.path, status, error)
        event = dict(
            path=str(job.path),
            status=status,
            error=error,
            source=job.source,
            seconds=round(seconds, 3),
            latency_s=round(time.time() - job.seen_at, 3),
            timings_ms=dict(outcome.timings_ms),
            report=str(outcome.report_path) if outcome.report_path else None,
        )
        if moved_to is not None:
            event["moved_to"] = str(moved_to)
        if outcome.reason:
            event["reason"] = outcome.reason
        if status == "failed":
            log.warning("photo", **event)
        else:
            log.info("photo", **event)

    def _defer(self, job: Job, error: str | None) -> None:
        """Try ``job`` again later, with back-off; it gets no report meanwhile."""
        with self._retry_lock:
            attempts = self._retries.get(job.path, (0.0, job, 0))[2] + 1
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempts - 1))
            retry = dataclasses.replace(job, source="retry")
            self._retries[job.path] = (time.monotonic() + delay, retry, attempts)
        self.state.record(job.path, "deferred", error)
        log.warning("photo_deferred", path=str(job.path), error=error, attempt=attempts, retry_in_s=delay)

    def _offer_due_retries(self) -> None:
        now = time.monotonic()
        with self._retry_lock:
            due = [(path, entry) for path, entry in self._retries.items() if entry[0] <= now]
            for path, (_, job, attempts) in due:  # not due again until its outcome comes
                self._retries[path] = (math.inf, job, attempts)
        for path, (_, job, attempts) in due:
            if self.queue.offer(dataclasses.replace(job, seen_at=time.time())) is Offer.FULL:
                with self._retry_lock:
                    if path in self._retries:
                        self._retries[path] = (now, job, attempts)  # next tick

    def _move_failed(self, job: Job, report_path: Path | None) -> Path | None:
        """Move a failed original (and its report) into ``daemon.failed_dir``."""
        assert self.folders.failed_dir is not None
        target_dir = self.folders.failed_dir / job.path.parent.relative_to(job.root)
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / job.path.name
            counter = 1
            while target.exists():
                target = target_dir / f"{job.path.stem}-{counter}{job.path.suffix}"
                counter += 1
            shutil.move(job.path, target)
            if report_path and report_path.exists():
                shutil.move(report_path, output_paths(target).report)
        except OSError as exc:
            log.error("failed_move_failed", path=str(job.path), error=str(exc))
            return None
        return target

    def _on_ready(self, slot: WorkerSlot) -> None:
        log.info("worker_ready", worker=slot.index, pid=slot.child_pid)

    def _on_fatal(self, slot: WorkerSlot, reason: str) -> None:
        log.error("worker_fatal", worker=slot.index, reason=reason)
        self.fatal = reason
        if slot.config_error:
            self.fatal_code = EXIT_USAGE
        self.request_stop()

    # -- lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or, with ``once``, until everything is processed)."""
        daemon_config = self.config.daemon
        removed = remove_stale_temps(self.folders)
        log.info(
            "starting",
            folders=[str(r) for r in self.roots],
            once=self.once,
            workers=daemon_config.workers,
            state_dir=str(self.state_dir),
            stale_temps_removed=len(removed),
        )
        self.notifier.status("loading the pipeline")
        self._write_status(force=True)
        self.slots = start_dispatchers(
            self.config,
            self.queue,
            state_dir=self.state_dir,
            factory_ref=self.retoucher_factory,
            on_outcome=self._on_outcome,
            on_ready=self._on_ready,
            on_fatal=self._on_fatal,
            abandon=self.abandon_event,
            precheck=self._precheck,
        )

        while not all(slot.ready.is_set() for slot in self.slots):
            signals = self._wait_for_signals(MAIN_TICK_S)
            self._heartbeat = time.monotonic()
            if self.fatal or any(s in (signal.SIGTERM, signal.SIGINT) for s in signals):
                return self.fatal_code if self.fatal else EXIT_OK

        self.tracker = SettleTracker(
            settle_s=daemon_config.settle_s, submit=self._submit_settled, stop=self.stop_event,
            max_tracked=max(1024, 4 * daemon_config.queue_size),
        )
        self.tracker.start()
        self.scanner = Scanner(
            self.folders, settle_s=daemon_config.settle_s, enqueue=self._enqueue_scanned,
            track=self._track, stop=self.stop_event,
        )
        self.scanner.start()
        if not self.once:
            self._start_watcher()  # before the scan, so nothing dropped meanwhile is missed
        self.scanner.request()

        self.state.set_phase("running")
        self.notifier.ready(self._summary())
        interval = watchdog_interval_s()
        if interval is not None:
            self.notifier.watchdog()
            self.pinger = WatchdogPinger(self.notifier, interval, self._healthy)
            self.pinger.start()
        log.info("ready", once=self.once)
        return self._main_loop()

    def _start_watcher(self) -> None:
        assert self.tracker is not None and self.scanner is not None
        daemon_config = self.config.daemon
        self.watcher = Watcher(
            self.folders,
            observer_kind=daemon_config.observer,
            poll_interval_s=daemon_config.poll_interval_s,
            submit=self._submit_event,
            tracker=self.tracker,
            scan=self.scanner.request,
        )
        self.watcher.start()

    def _healthy(self) -> bool:
        return time.monotonic() - self._heartbeat < max(2.0, (self.pinger.interval_s if self.pinger else 2.0))

    def _main_loop(self) -> int:
        assert self.scanner is not None and self.tracker is not None
        while True:
            signals = self._wait_for_signals(MAIN_TICK_S)
            self._heartbeat = time.monotonic()
            if self.fatal:
                return self.fatal_code
            if any(s in (signal.SIGTERM, signal.SIGINT) for s in signals):
                log.info("stop_requested", signal=[signal.Signals(s).name for s in signals])
                return EXIT_OK
            if signal.SIGHUP in signals:
                self.reload()
            self._offer_due_retries()
            if time.monotonic() - self._roots_checked_at >= ROOT_CHECK_INTERVAL_S:
                self._roots_checked_at = time.monotonic()
                self._check_roots()
            if (self.overflowed.is_set() or self.tracker.overflowed.is_set()) and self._has_room():
                self.overflowed.clear()
                self.tracker.overflowed.clear()
                log.info("queue_overflow_rescan")
                self.scanner.request()
            self._write_status()
            if self.once and self._all_done():
                log.info("once_done", **{k: self.state.counts[k] for k in ("ok", "skipped", "failed")})
                return EXIT_FAILED if self.state.counts["failed"] else EXIT_OK
            if not any(slot.is_alive() for slot in self.slots):
                self.fatal = self.fatal or "all workers stopped"
                return EXIT_FAILED

    def _check_roots(self) -> None:
        """Notice a hot folder that vanished or was replaced, say so, and re-attach to it.

        inotify watches a folder's inode: after ``rm -rf HOT; mkdir HOT`` the old watch is
        gone and the new folder is not watched. The new folder is locked, watched again
        and scanned; until it is back, ``status`` shows the problem.
        """
        changed = False
        for root in self.roots:
            identity = _folder_identity(root)
            known = self._root_ids.get(root)
            if identity == known:
                continue
            self._root_ids[root] = identity
            if identity is None:
                log.error("hot_folder_missing", folder=str(root))
                self.state.set_folder_problem(root, f"is missing (since {time.strftime('%H:%M:%S')})")
                self.folder_locks.pop(root, FolderLock(root)).release()
                continue
            self.folder_locks.pop(root, FolderLock(root)).release()
            folder_lock = FolderLock(root)
            if not folder_lock.acquire():
                log.error("hot_folder_taken_by_another_daemon", folder=str(root))
                self.state.set_folder_problem(root, "was replaced and is now served by another daemon")
                continue
            self.folder_locks[root] = folder_lock
            log.warning("hot_folder_reattached", folder=str(root), replaced=known is not None)
            self.state.set_folder_problem(root, None)
            changed = True
        if changed and self.watcher is not None:
            self.watcher.stop()
            self._start_watcher()
        if changed and self.scanner is not None:
            self.scanner.request()

    def _has_room(self) -> bool:
        return self.queue.pending_count() <= self.queue.maxsize // 2

    def _all_done(self) -> bool:
        assert self.scanner is not None and self.tracker is not None
        return (
            self.scanner.scans_done > 0
            and self.scanner.is_idle()
            and len(self.tracker) == 0
            and self.queue.is_idle()
            and not self.overflowed.is_set()
            and not self._retries
        )

    def _shutdown(self) -> None:
        self.state.set_phase("stopping")
        self.notifier.stopping()
        if self.watcher is not None:
            self.watcher.stop()
        self.stop_event.set()
        self.queue.close()
        grace_s = self.config.daemon.grace_s
        deadline = time.monotonic() + grace_s
        busy = [job.path for job, _ in self.queue.running()]
        if busy:
            log.info("stopping_finishing_current", photos=[str(p) for p in busy], grace_s=grace_s)
        for slot in self.slots:
            while slot.is_alive() and time.monotonic() < deadline:
                slot.join(MAIN_TICK_S)
                self._heartbeat = time.monotonic()
                self._write_status()
                # A second SIGTERM/SIGINT: do not wait out the grace time.
                if any(s in (signal.SIGTERM, signal.SIGINT) for s in self._wait_for_signals(0)):
                    deadline = time.monotonic()
        if any(slot.is_alive() for slot in self.slots):
            log.warning("grace_time_over_abandoning", grace_s=grace_s)
            self.abandon_event.set()
            for slot in self.slots:
                slot.join(10.0)
        if self.pinger is not None:
            self.pinger.stop()
        self.state.set_phase("stopped")
        self._write_status(force=True)
        log.info("stopped", **{k: self.state.counts[k] for k in ("ok", "skipped", "failed")})

    # -- reload ----------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the config file; on any problem keep the running config and log why."""
        self.notifier.reloading()
        self.state.set_phase("reloading")
        try:
            ok = self._reload()
        finally:
            self.state.set_phase("running")
            self.notifier.ready(self._summary())
        return ok

    def _reload(self) -> bool:
        if self.config_path is None:
            log.warning("reload_ignored", reason="no --config file was given; nothing to re-read")
            self._note_reload(False, "no config file")
            return False
        try:
            new = load_config(self.config_path)
            roots = _resolve_roots(new, self.cli_folders)
            _check_daemon_folders(new, self.state_dir)
            self._lock_folders(roots)
        except (ConfigError, StartupError) as exc:
            log.error("reload_failed_keeping_old_config", config=str(self.config_path), error=str(exc))
            self._note_reload(False, str(exc))
            return False
        old = self.config
        changed = [f.name for f in dataclasses.fields(Config) if getattr(old, f.name) != getattr(new, f.name)]
        for name in _RESTART_ONLY_FIELDS:
            if getattr(old.daemon, name) != getattr(new.daemon, name):
                log.warning("reload_needs_restart", key=f"daemon.{name}", kept=getattr(old.daemon, name))
                new = new.replace("daemon", **{name: getattr(old.daemon, name)})
        self.config = new
        if set(changed) - _DAEMON_ONLY_SECTIONS:
            for slot in self.slots:
                slot.reconfigure(new)
        if "logging" in changed:
            from ..logs import configure_logging

            configure_logging(new.logging, stream=sys.stdout)
        if "daemon" in changed or roots != self.roots:
            self._apply_daemon_config(roots)
        log.info("config_reloaded", config=str(self.config_path), changed=changed)
        self._note_reload(True, None, changed)
        return True

    def _apply_daemon_config(self, roots: list[Path]) -> None:
        assert self.tracker is not None and self.scanner is not None
        self.roots = roots
        self._root_ids = {r: _folder_identity(r) for r in roots}
        self.folders = HotFolders.from_config(roots, self.config.daemon, state_dir=self.state_dir)
        self.state.folders = [str(r) for r in roots]
        self.tracker.settle_s = self.config.daemon.settle_s
        self.scanner.folders = self.folders
        self.scanner.settle_s = self.config.daemon.settle_s
        if self.watcher is not None:
            self.watcher.stop()
            self._start_watcher()
        self.scanner.request()

    def _note_reload(self, ok: bool, error: str | None, changed: list[str] | None = None) -> None:
        self.state.last_reload = {"at": time.time(), "ok": ok, "error": error, "changed": changed or []}
        self.state.version += 1

    # -- status ----------------------------------------------------------------------
    def _summary(self) -> str:
        return self.state.summary(queued=self.queue.pending_count(), running=len(self.queue.running()))

    def _write_status(self, *, force: bool = False) -> None:
        now = time.monotonic()
        running = [(str(job.path), now - started) for job, started in self.queue.running()]
        # A photo's outcome is counted just before its job leaves the running set: a status
        # written in between showed it both done and running, until the next refresh.
        running_paths = frozenset(path for path, _ in running)
        changed = self.state.version != self._status_version_written or running_paths != self._status_running_written
        due = now - self._status_written_at >= (STATUS_WRITE_INTERVAL_S if changed else STATUS_REFRESH_S)
        if not (force or due):
            return
        with self._retry_lock:
            self.state.waiting_to_retry = len(self._retries)
        snapshot = self.state.snapshot(
            queued=self.queue.pending_count(),
            running=running,
            settling=len(self.tracker) if self.tracker is not None else 0,
        )
        try:
            write_status(self.state_dir, snapshot)
        except OSError as exc:
            log.warning("status_not_written", error=str(exc))
        self._status_version_written = self.state.version
        self._status_running_written = running_paths
        self._status_written_at = now
        summary = self._summary()
        if summary != self._last_summary:
            self.notifier.status(summary)
            self._last_summary = summary


def _ignore_signal(signum: int, frame: object) -> None:
    pass


def run_watch(
    config: Config,
    folders: list[Path],
    *,
    once: bool,
    config_path: Path | None,
    retoucher_factory: str = DEFAULT_RETOUCHER,
) -> int:
    """``skinretouch watch``: run the daemon; returns the process exit code.

    0: stopped by SIGTERM/SIGINT (or ``--once`` with no failure); 1: ``--once`` with a
    failed photo, or the pipeline could not be loaded; 2: bad folders or configuration,
    or another daemon holds the state folder.
    """
    try:
        service = HotFolderService(
            config, folders, once=once, config_path=config_path, retoucher_factory=retoucher_factory
        )
        with service:
            return service.run()
    except StartupError as exc:
        print(f"skinretouch watch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"skinretouch watch: {exc}", file=sys.stderr)
        return EXIT_USAGE
