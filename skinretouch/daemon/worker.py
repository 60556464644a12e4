"""Worker processes: each loads the pipeline once and processes one photo at a time.

A photo runs in a child process so that a crash while decoding it (or an out-of-memory
kill) costs that photo a ``failed`` report instead of costing the daemon, and so that a
photo still running when the SIGTERM grace time ends can be abandoned cleanly: the
child is killed and the temporaries of its outputs removed, so nothing half-written
remains. Children die with the daemon (``PR_SET_PDEATHSIG``), so a kill -9 of the daemon
never leaves a photo being finished behind a restarted one's back.

The protocol over the pipe is a few small dataclasses (:class:`ProcessPhoto`,
:class:`Reconfigure` to the child; :class:`Ready`, :class:`Fatal`, :class:`Done`,
:class:`Reconfigured` back), and the child's pipeline is any
:class:`~skinretouch.files.outcome.FileProcessor`.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ..config import Config
from ..errors import InputError, SkinRetouchError
from ..files.outcome import FileOutcome, FileProcessor
from ..files.report import InputInfo, Report
from ..logs import bind_contextvars, get_logger
from ..safefs import open_folder_beneath
from ..sidecars import output_paths
from .paths import temp_names_for
from .queue import STOP, Job, JobQueue

__all__ = [
    "DEFAULT_RETOUCHER",
    "Done",
    "Fatal",
    "ProcessPhoto",
    "Ready",
    "Reconfigure",
    "Reconfigured",
    "WorkerSlot",
    "remove_job_temps",
    "write_failed_report",
]

log = get_logger(__name__)

# ``module:attribute`` of the callable ``(Config) -> FileProcessor`` each worker runs; a
# reference rather than the callable, so the daemon's own process never imports the pipeline.
DEFAULT_RETOUCHER = "skinretouch.files.stage:RetouchFiles"
_PR_SET_PDEATHSIG = 1


# -- the pipe's messages ---------------------------------------------------------------
@dataclass(frozen=True)
class ProcessPhoto:
    """Parent → child: process one photo, found in the hot folder ``root``."""

    path: Path
    root: Path
    out_dir: Path | None
    force: bool


@dataclass(frozen=True)
class Reconfigure:
    """Parent → child: rebuild the processor with this configuration."""

    config: Config


@dataclass(frozen=True)
class Ready:
    """Child → parent: the processor is loaded and warm."""

    pid: int
    report_settings: dict[str, Any]


@dataclass(frozen=True)
class Fatal:
    """Child → parent: the processor cannot be loaded; the daemon cannot work."""

    reason: str
    # a SkinRetouchError (a missing weights, reference or ONNX file...): the
    # configuration's fault, so the daemon exits 2 for it, as ``process`` does
    config_error: bool = False


@dataclass(frozen=True)
class Done:
    """Child → parent: what happened to the photo of the last :class:`ProcessPhoto`."""

    outcome: FileOutcome


@dataclass(frozen=True)
class Reconfigured:
    """Child → parent: the answer to :class:`Reconfigure` (``error`` None when it worked)."""

    error: str | None
    report_settings: dict[str, Any] | None = None


# -- child side ----------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)

    def watch_parent() -> None:  # for systems without PR_SET_PDEATHSIG
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()


def _load_factory(reference: str) -> Callable[[Config], FileProcessor]:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _build(factory: Callable[[Config], FileProcessor], config: Config) -> FileProcessor:
    processor = factory(config)
    warm_up = getattr(processor, "warm_up", None)
    if callable(warm_up):
        warm_up()
    return processor


def child_main(conn: Connection, config: Config, factory_ref: str, parent_pid: int, index: int) -> None:
    """Entry point of a worker process (runs until the pipe closes)."""
    _die_with_parent(parent_pid)
    # The daemon decides when a photo is abandoned; a terminal's Ctrl-C goes to the
    # whole process group and must not cut a photo in half.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    from ..logs import configure_logging
    from ..startup import prepare_process

    prepare_process()
    configure_logging(config.logging, stream=sys.stdout)
    bind_contextvars(worker=index)
    try:
        factory = _load_factory(factory_ref)
        processor = _build(factory, config)
    except Exception as exc:
        conn.send(Fatal(
            f"cannot load the pipeline ({factory_ref}): {type(exc).__name__}: {exc}",
            config_error=isinstance(exc, SkinRetouchError),
        ))
        return
    conn.send(Ready(os.getpid(), processor.report_settings()))
    home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(message, ProcessPhoto):
            try:
                outcome = _process_confined(processor, message)
            finally:
                os.fchdir(home)
            conn.send(Done(outcome))
        elif isinstance(message, Reconfigure):
            try:
                new = _build(factory, message.config)
            except Exception as exc:
                conn.send(Reconfigured(f"{type(exc).__name__}: {exc}"))
                continue
            processor.close()
            processor = new
            conn.send(Reconfigured(None, processor.report_settings()))
        else:
            return


def _process_confined(processor: FileProcessor, request: ProcessPhoto) -> FileOutcome:
    """Process a photo from inside its folder, reached from its hot folder without following links.

    The child changes into the photo's folder through a descriptor opened by
    :func:`open_folder_beneath` and hands the file stage the bare file name: the photo is
    read from, and its outputs written into, the folder that was checked, even if a
    sub-folder is swapped for a symlink to somewhere else meanwhile. The photo itself is
    opened without following a symlink. The caller changes back afterwards.
    """
    path = request.path
    try:
        folder_fd = open_folder_beneath(request.root, path.parent)
    except (InputError, OSError) as exc:
        return FileOutcome(input_path=path, status="failed", error=str(exc))
    try:
        os.fchdir(folder_fd)
    finally:
        os.close(folder_fd)
    try:
        outcome = processor.process_file(
            Path(path.name), out_dir=request.out_dir, force=request.force, follow_symlinks=False
        )
    except Exception as exc:  # the pipeline promises not to raise; if it does, say why
        error = f"internal error: {type(exc).__name__}: {exc}"
        return FileOutcome(input_path=path, status="failed", error=error)
    # Paths as the parent can use them: this folder's current absolute name.
    for name in ("report_path", "image_path", "mask_path", "overlay_path"):
        value = getattr(outcome, name)
        if value is not None:
            setattr(outcome, name, Path(os.path.abspath(value)))
    outcome.input_path = path
    return outcome


# -- parent side ---------------------------------------------------------------------
def remove_job_temps(job: Job) -> list[Path]:
    """Delete the temporaries a killed worker may have left for ``job``'s outputs."""
    folder, prefixes = temp_names_for(job.path, job.out_dir)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if name.endswith(".tmp") and name.startswith(prefixes):
            try:
                (folder / name).unlink()
                removed.append(folder / name)
            except OSError:
                pass
    return removed


def write_failed_report(job: Job, reason: str, settings: dict[str, Any]) -> Path | None:
    """The ``failed`` report of a photo whose worker died (there is no pipeline to write it).

    ``settings`` are those the worker's own reports carry, so this report has every field
    an ordinary failed report has.
    """
    report_path = output_paths(job.path, job.out_dir).report
    digest = hashlib.sha256()
    try:
        # Never block on a FIFO or follow a link swapped in: only a regular file is hashed.
        fd = os.open(job.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError("not a regular file")
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        sha256 = digest.hexdigest()
    except OSError:
        sha256 = ""
    report = Report(input=InputInfo(path=str(job.path.absolute()), sha256=sha256), settings=dict(settings))
    report.fail(reason)
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(report_path, report.to_json())
    except OSError as exc:
        log.error("failed_report_not_written", path=str(job.path), error=exc.strerror)
        return None
    return report_path


class WorkerDied(Exception):
    pass


def _describe_exit(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


class WorkerSlot(threading.Thread):
    """One worker: a thread here that feeds one child process from the queue.

    Parameters
    ----------
    index : int
    queue : JobQueue
    config : Config
    factory_ref : str
        ``"module:attribute"`` of a callable ``(Config) -> retoucher``.
    on_outcome : callable(job, FileOutcome, seconds)
    on_ready : callable(slot)
    on_fatal : callable(slot, reason)
        The pipeline cannot be loaded: the daemon cannot work.
    abandon : threading.Event
        Set when the grace time is over: the running photo is killed and cleaned up.
    precheck : callable(job) -> str or None
        A reason not to send ``job`` to the pipeline at all (vanished, already done).
    """

    def __init__(
        self,
        index: int,
        queue: JobQueue,
        *,
        config: Config,
        factory_ref: str,
        on_outcome: Callable[[Job, FileOutcome, float], None],
        on_ready: Callable[[WorkerSlot], None],
        on_fatal: Callable[[WorkerSlot, str], None],
        abandon: threading.Event,
        precheck: Callable[[Job], str | None] = lambda job: None,
    ) -> None:
        super().__init__(name=f"skinretouch-worker-{index}", daemon=True)
        self.index = index
        self.queue = queue
        self.config = config
        self.factory_ref = factory_ref
        self._on_outcome = on_outcome
        self._on_ready = on_ready
        self._on_fatal = on_fatal
        self._abandon = abandon
        self._precheck = precheck
        self._pending_config: Config | None = None
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.ready = threading.Event()
        self.config_error = False  # the pipeline could not load because of the configuration
        self.abandoned: Job | None = None
        # The ``settings`` of the child's reports, for the report of a photo it dies on.
        self.report_settings: dict[str, Any] = {}

    def reconfigure(self, config: Config) -> None:
        """Use ``config`` from the next photo on (the current one finishes as it was)."""
        with self._lock:
            self._pending_config = config

    @property
    def child_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # The child is started and killed from this thread only: PR_SET_PDEATHSIG fires
    # when the *thread* that forked the child ends, and this one outlives its child.
    def run(self) -> None:
        try:
            if not self._start_child():
                return
            self.ready.set()
            self._on_ready(self)
            while True:
                job = self.queue.get(timeout=0.5)
                if job is STOP:
                    return
                if job is None:
                    continue
                try:
                    self._run_job(job)
                finally:
                    self.queue.task_done(job)
                if self._abandon.is_set() or self._process is None:
                    return
        except Exception:
            log.exception("worker_failed", worker=self.index)
            self._on_fatal(self, "worker thread failed")
        finally:
            self._stop_child()

    def _start_child(self) -> bool:
        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(
            target=child_main,
            args=(child_conn, self.config, self.factory_ref, os.getpid(), self.index),
            name=f"skinretouch-worker-{self.index}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        self._process, self._conn = process, parent_conn
        try:
            reply = self._receive(None)
        except WorkerDied as exc:
            self._on_fatal(self, f"worker process died while loading the pipeline ({exc})")
            return False
        if reply is None:  # abandoned while loading
            return False
        if isinstance(reply, Fatal):
            self.config_error = reply.config_error
            self._on_fatal(self, reply.reason)
            return False
        assert isinstance(reply, Ready), reply
        self.report_settings = reply.report_settings
        log.debug("worker_ready", worker=self.index, pid=reply.pid)
        return True

    def _stop_child(self) -> None:
        process, conn = self._process, self._conn
        if process is None:
            return
        if conn is not None:
            conn.close()  # the child sees EOF and exits
        process.join(2.0)
        if process.is_alive():
            process.kill()
            process.join(2.0)
        self._process = self._conn = None

    def _kill_child(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5.0)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def _receive(self, job: Job | None) -> Ready | Fatal | Done | Reconfigured | None:
        """The child's next message; None if abandoned; raises WorkerDied."""
        assert self._conn is not None and self._process is not None
        while True:
            if self._abandon.is_set():
                self._kill_child()
                if job is not None:
                    self.abandoned = job
                    removed = remove_job_temps(job)
                    log.warning(
                        "photo_abandoned", path=str(job.path), worker=self.index,
                        temps_removed=len(removed),
                    )
                return None
            try:
                if self._conn.poll(0.1):
                    return self._conn.recv()
            except (EOFError, OSError):
                pass
            else:
                if self._process.is_alive():
                    continue
            self._process.join(1.0)
            code = self._process.exitcode
            raise WorkerDied(_describe_exit(code))

    def _run_job(self, job: Job) -> None:
        reason = self._precheck(job)
        if reason is not None:
            self._on_outcome(job, FileOutcome(input_path=job.path, status="skipped", reason=reason), 0.0)
            return
        with self._lock:
            new_config, self._pending_config = self._pending_config, None
        if new_config is not None:
            self._apply_config(new_config)
        if self._conn is None:  # the child could not be restarted; the job stays undone
            return
        started = time.monotonic()
        try:
            self._conn.send(ProcessPhoto(job.path, job.root, job.out_dir, job.force))
            reply = self._receive(job)
        except (WorkerDied, OSError) as exc:
            reason = f"the worker process died while processing this photo ({exc})"
            remove_job_temps(job)
            # The service decides: a first crash is retried (the worker may have been
            # killed from outside), a second one is the photo's fault and gets a report.
            outcome = FileOutcome(input_path=job.path, status="crashed", error=reason)
            self._on_outcome(job, outcome, time.monotonic() - started)
            self._restart_child()
            return
        if reply is None:
            return
        assert isinstance(reply, Done), reply
        self._on_outcome(job, reply.outcome, time.monotonic() - started)

    def _apply_config(self, config: Config) -> None:
        assert self._conn is not None
        try:
            self._conn.send(Reconfigure(config))
            reply = self._receive(None)
        except (WorkerDied, OSError) as exc:
            log.error("worker_reconfigure_died", worker=self.index, error=str(exc))
            self._restart_child()
            return
        if reply is None:
            return
        assert isinstance(reply, Reconfigured), reply
        if reply.error is None:
            self.config = config
            self.report_settings = reply.report_settings or {}
            log.info("worker_reconfigured", worker=self.index)
        else:
            log.error("worker_reconfigure_failed_kept_old", worker=self.index, error=reply.error)

    def _restart_child(self) -> None:
        self._kill_child()
        if not self._abandon.is_set():
            log.warning("worker_restarting", worker=self.index)
            self._start_child()
