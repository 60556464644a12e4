"""Worker processes: each loads the pipeline once and processes one photo at a time.

A photo runs in a child process so that a crash while decoding it (or an out-of-memory
kill) costs that photo a ``failed`` report instead of costing the daemon, and so that a
photo still running when the SIGTERM grace time ends can be abandoned cleanly: the
child is killed and the temporaries of its outputs removed, so nothing half-written
remains. Children die with the daemon (``PR_SET_PDEATHSIG``), so a kill -9 of the daemon
never leaves a photo being finished behind a restarted one's back.

The protocol over the pipe is a few tuples:
parent → child ``("process", path, root, out_dir, force)``, ``("configure", config)``;
child → parent ``("ready", pid)``, ``("fatal", reason, is_config_error)``, ``("outcome", dict)``,
``("configured", error_or_None)``.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

from ..atomic import atomic_write_bytes
from ..config import Config
from ..errors import InputError, SkinRetouchError
from ..safefs import open_folder_beneath
from ..sidecars import output_paths
from .paths import temp_names_for
from .queue import STOP, Job, JobQueue

__all__ = ["DEFAULT_RETOUCHER", "WorkerSlot", "remove_job_temps", "write_failed_report"]

log = structlog.get_logger(__name__)

DEFAULT_RETOUCHER = "skinretouch.pipeline:Retoucher"
_PR_SET_PDEATHSIG = 1


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


def _load_factory(reference: str) -> Callable[[Config], Any]:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _build(factory: Callable[[Config], Any], config: Config) -> Any:
    retoucher = factory(config)
    warm_up = getattr(retoucher, "warm_up", None)
    if callable(warm_up):
        warm_up()
    return retoucher


def child_main(conn: Connection, config: Config, factory_ref: str, parent_pid: int, index: int) -> None:
    """Entry point of a worker process (runs until the pipe closes)."""
    _die_with_parent(parent_pid)
    # The daemon decides when a photo is abandoned; a terminal's Ctrl-C goes to the
    # whole process group and must not cut a photo in half.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    from ..logs import configure_logging

    configure_logging(config.logging, stream=sys.stdout)
    structlog.contextvars.bind_contextvars(worker=index)
    try:
        factory = _load_factory(factory_ref)
        retoucher = _build(factory, config)
    except Exception as exc:
        # A SkinRetouchError is the configuration's fault (a missing weights, reference or
        # ONNX file...): the daemon exits 2 for it, as ``process`` does.
        conn.send((
            "fatal",
            f"cannot load the pipeline ({factory_ref}): {type(exc).__name__}: {exc}",
            isinstance(exc, SkinRetouchError),
        ))
        return
    conn.send(("ready", os.getpid()))
    home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "process":
            _, path, root, out_dir, force = message
            try:
                outcome = _process_confined(retoucher, Path(path), Path(root), out_dir, force)
            finally:
                os.fchdir(home)
            conn.send(("outcome", outcome))
        elif kind == "configure":
            try:
                retoucher = _build(factory, message[1])
                conn.send(("configured", None))
            except Exception as exc:
                conn.send(("configured", f"{type(exc).__name__}: {exc}"))
        else:
            return


def _process_confined(retoucher: Any, path: Path, root: Path, out_dir: str | None, force: bool) -> dict[str, Any]:
    """Process ``path`` from inside its folder, reached from ``root`` without following links.

    The child changes into the photo's folder through a descriptor opened by
    :func:`open_folder_beneath` and hands the pipeline the bare file name: the photo is
    read from, and its outputs written into, the folder that was checked, even if a
    sub-folder is swapped for a symlink to somewhere else meanwhile. The photo itself is
    opened without following a symlink. The caller changes back afterwards.
    """
    try:
        folder_fd = open_folder_beneath(root, path.parent)
    except (InputError, OSError) as exc:
        return {"status": "failed", "error": str(exc), "report_path": None, "timings_ms": {}}
    try:
        os.fchdir(folder_fd)
    finally:
        os.close(folder_fd)
    try:
        outcome = retoucher.process_file(
            Path(path.name), out_dir=Path(out_dir) if out_dir else None, force=force, follow_symlinks=False
        )
    except Exception as exc:  # the pipeline promises not to raise; if it does, say why
        return {"status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}", "raised": True}
    return {
        "status": outcome.status,
        "error": outcome.error,
        "report_path": os.path.abspath(outcome.report_path) if outcome.report_path else None,
        "image_path": os.path.abspath(outcome.image_path) if outcome.image_path else None,
        "timings_ms": dict(outcome.timings_ms or {}),
    }


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


def write_failed_report(job: Job, reason: str) -> Path | None:
    """A schema-1 ``failed`` report for a photo whose worker died (no pipeline to write it)."""
    from .. import __version__

    report = output_paths(job.path, job.out_dir).report
    digest = hashlib.sha256()
    try:
        with open(job.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        sha256 = digest.hexdigest()
    except OSError:
        sha256 = ""
    body = {
        "schema": 1,
        "tool": {"name": "skinretouch", "version": __version__},
        "input": {"path": str(job.path), "sha256": sha256, "width": None, "height": None,
                  "bit_depth": None, "format": None},
        "outputs": {"image": None, "mask": None},
        "status": "failed",
        "error": reason,
        "settings": {},
        "timings_ms": {},
        "regions": [],
        "protected": [],
    }
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(report, (json.dumps(body, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        log.error("failed_report_not_written", path=str(job.path), error=exc.strerror)
        return None
    return report


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
    on_outcome : callable(job, outcome dict, seconds)
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
        on_outcome: Callable[[Job, dict[str, Any], float], None],
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
        if reply[0] == "fatal":
            self.config_error = bool(reply[2])
            self._on_fatal(self, reply[1])
            return False
        log.debug("worker_ready", worker=self.index, pid=reply[1])
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

    def _receive(self, job: Job | None) -> tuple | None:
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
            self._on_outcome(job, {"status": "skipped", "error": None, "reason": reason}, 0.0)
            return
        with self._lock:
            new_config, self._pending_config = self._pending_config, None
        if new_config is not None:
            self._apply_config(new_config)
        if self._conn is None:  # the child could not be restarted; the job stays undone
            return
        started = time.monotonic()
        try:
            self._conn.send(
                ("process", str(job.path), str(job.root), str(job.out_dir) if job.out_dir else None, job.force)
            )
            reply = self._receive(job)
        except (WorkerDied, OSError) as exc:
            reason = f"the worker process died while processing this photo ({exc})"
            remove_job_temps(job)
            # The service decides: a first crash is retried (the worker may have been
            # killed from outside), a second one is the photo's fault and gets a report.
            outcome = {"status": "crashed", "error": reason, "report_path": None, "timings_ms": {}}
            self._on_outcome(job, outcome, time.monotonic() - started)
            self._restart_child()
            return
        if reply is None:
            return
        self._on_outcome(job, reply[1], time.monotonic() - started)

    def _apply_config(self, config: Config) -> None:
        assert self._conn is not None
        try:
            self._conn.send(("configure", config))
            reply = self._receive(None)
        except (WorkerDied, OSError) as exc:
            log.error("worker_reconfigure_died", worker=self.index, error=str(exc))
            self._restart_child()
            return
        if reply is None:
            return
        if reply[1] is None:
            self.config = config
            log.info("worker_reconfigured", worker=self.index)
        else:
            log.error("worker_reconfigure_failed_kept_old", worker=self.index, error=reply[1])

    def _restart_child(self) -> None:
        self._kill_child()
        if not self._abandon.is_set():
            log.warning("worker_restarting", worker=self.index)
            self._start_child()
