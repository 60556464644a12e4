"""The bounded work queue between the watcher and the workers.

Jobs are frozen dataclasses keyed by the photo's path, so a burst of events for one
file becomes one job. The queue never grows past ``maxsize``: the watchdog dispatcher
thread only *offers* (and a full queue answers ``FULL``, which the service turns into a
later catch-up scan), while the scanner thread blocks in :meth:`JobQueue.put` until
there is room (back-pressure).
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["STOP", "Job", "JobQueue", "Offer"]

JobSource = Literal["event", "settle", "scan", "rerun", "retry"]


@dataclass(frozen=True)
class Job:
    """One photo to process.

    Two jobs are equal when they name the same file with the same output place and
    force flag; where and when the file was seen does not take part.
    """

    path: Path  # absolute path of the original
    root: Path  # the hot folder it was found in
    out_dir: Path | None = None  # None: outputs go beside the original
    force: bool = False
    source: JobSource = field(default="event", compare=False)
    # wall-clock time (time.time()) at which the file was seen completely written
    seen_at: float = field(default_factory=time.time, compare=False)


class _Stop:
    def __repr__(self) -> str:
        return "STOP"


STOP = _Stop()
"""Marker that :meth:`JobQueue.get` returns once the queue is closed."""


class Offer(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # already queued (or re-queued after the running one)
    FULL = "full"
    CLOSED = "closed"


class JobQueue:
    """FIFO of :class:`Job` with de-duplication by path and a fixed capacity.

    A job for a path that is being processed right now is not run twice at once: it is
    remembered and queued again when the running one finishes (the pipeline's sha256
    check then skips it if the file did not change).

    Parameters
    ----------
    maxsize : int
        Most jobs waiting at once (running ones not counted).
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._pending: deque[Job] = deque()
        self._pending_paths: set[Path] = set()
        self._running: dict[Path, tuple[Job, float]] = {}
        self._rerun: dict[Path, Job] = {}
        self._closed = False
        self._cond = threading.Condition()

    # -- producers -------------------------------------------------------------------
    def offer(self, job: Job) -> Offer:
        """Add ``job`` without blocking (safe on watchdog's dispatcher thread)."""
        with self._cond:
            return self._add(job)

    def put(self, job: Job, *, stop: threading.Event, poll_s: float = 0.2) -> Offer:
        """Add ``job``, waiting while the queue is full (until ``stop`` is set)."""
        with self._cond:
            while True:
                result = self._add(job)
                if result is not Offer.FULL:
                    return result
                if stop.is_set():
                    return Offer.CLOSED
                self._cond.wait(poll_s)

    def _add(self, job: Job) -> Offer:
        if self._closed:
            return Offer.CLOSED
        if job.path in self._pending_paths:
            return Offer.DUPLICATE
        if job.path in self._running:
            if job.path in self._rerun:
                return Offer.DUPLICATE
            self._rerun[job.path] = job
            return Offer.ACCEPTED
        if len(self._pending) >= self.maxsize:
            return Offer.FULL
        self._pending.append(job)
        self._pending_paths.add(job.path)
        self._cond.notify_all()
        return Offer.ACCEPTED

    # -- consumers -------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Job | _Stop | None:
        """The next job (now marked running), :data:`STOP` once closed, or None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return STOP
                if self._pending:
                    job = self._pending.popleft()
                    self._pending_paths.discard(job.path)
                    self._running[job.path] = (job, time.monotonic())
                    self._cond.notify_all()
                    return job
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def task_done(self, job: Job) -> None:
        """Mark ``job`` finished; a job that arrived for it meanwhile is queued now."""
        with self._cond:
            self._running.pop(job.path, None)
            again = self._rerun.pop(job.path, None)
            if again is not None and not self._closed:
                # Allowed past maxsize by at most one per worker, so nothing is lost.
                self._pending.append(again)
                self._pending_paths.add(again.path)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop handing out jobs: every :meth:`get` returns :data:`STOP` from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- inspection ------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def pending_count(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._rerun)

    def running(self) -> list[tuple[Job, float]]:
        """Running jobs with their start time (``time.monotonic()``)."""
        with self._cond:
            return list(self._running.values())

    def is_idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._running and not self._rerun

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running or self._rerun:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
