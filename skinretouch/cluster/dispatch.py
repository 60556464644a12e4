"""The daemon's side of the cluster: enqueue settled photos, collect their outcomes.

:class:`CeleryDispatcher` stands where the local worker slots stand: it takes jobs from
the daemon's :class:`~skinretouch.daemon.queue.JobQueue`, sends one task per photo (its
path and sha256) and keeps the job *running* in that queue until the worker's outcome
arrives on the daemon's own list in Redis; the daemon then records it exactly as a local
outcome. A broker that goes away is waited for, and said so, on both paths; nothing is
dropped meanwhile.

A photo can still vanish inside the broker (a Redis restart between a worker's ``BRPOP``
and its record of the message: :mod:`~skinretouch.cluster.lost`), so the daemon also
looks for the photos it sent; a lost one is sent again under a new task id. Repeats are
harmless by design: the worker's lock and its complete-outputs check make the second copy
a no-op, and the daemon records each photo's outcome once.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, config_sha256, pipeline_config
from ..daemon.queue import STOP, Job, JobQueue
from ..daemon.worker import write_failed_report
from ..files.outcome import FileOutcome
from ..files.report import read_report
from ..logs import get_logger
from ..sidecars import output_paths

__all__ = ["CeleryDispatcher"]

log = get_logger(__name__)

RECONNECT_MAX_S = 5.0
OUTCOME_WAIT_S = 1  # seconds one BLPOP waits (the listener's stop latency)
RETIRED_IDS_KEPT = 10_000  # task ids of finished photos remembered, to name late repeats as such


@dataclass(eq=False)
class _Flight:
    """One photo sent to the cluster, under every task id it was sent with."""

    job: Job
    payload: dict[str, Any]
    lock: str  # the key a task working on this photo holds
    task_ids: list[str] = field(default_factory=list)
    first_sent: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)  # sent, or last found waiting


class _BrokerLink:
    """Whether the broker answered last time, logging each change once."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self._up = True
        self._lock = threading.Lock()

    def failed(self, where: str, exc: BaseException) -> None:
        with self._lock:
            if self._up:
                self._up = False
                log.error("broker_unreachable", where=where, error=f"{type(exc).__name__}: {exc}",
                          action="waiting and retrying; nothing is dropped")

    def worked(self, where: str) -> bool:
        """Records a success; True when it ends an outage."""
        with self._lock:
            if not self._up:
                self._up = True
                log.info("broker_reconnected", where=where)
                return True
            return False

    @property
    def up(self) -> bool:
        return self._up


class CeleryDispatcher(threading.Thread):
    """Sends the daemon's photos to Celery workers; looks like a worker slot to the daemon.

    Parameters
    ----------
    queue : JobQueue
    config : Config
    state_dir : Path
        Names this daemon's outcome list (stable across restarts, so outcomes of photos
        finished while it was down are still read).
    on_outcome, on_ready, on_fatal, abandon, precheck
        As for :class:`~skinretouch.daemon.worker.WorkerSlot`.
    """

    index = 0
    child_pid = None

    def __init__(
        self,
        queue: JobQueue,
        *,
        config: Config,
        state_dir: Path,
        on_outcome: Callable[[Job, FileOutcome, float], None],
        on_ready: Callable[[Any], None],
        on_fatal: Callable[[Any, str], None],
        abandon: threading.Event,
        precheck: Callable[[Job], str | None] = lambda job: None,
    ) -> None:
        super().__init__(name="skinretouch-cluster-dispatcher", daemon=True)
        self.queue = queue
        self.config = config
        self.state_dir = state_dir
        self._on_outcome = on_outcome
        self._on_ready = on_ready
        self._on_fatal = on_fatal
        self._abandon = abandon
        self._precheck = precheck
        self.ready = threading.Event()
        self.abandoned: Job | None = None
        self._in_flight: dict[str, _Flight] = {}  # every live task id -> its photo
        self._flights: set[_Flight] = set()
        self._retired: OrderedDict[str, None] = OrderedDict()  # task ids of finished photos
        self._in_flight_lock = threading.Condition()
        self._send_lock = threading.Lock()
        self._lost = None  # a LostWatch, once the broker's keys are known
        self._stop_listening = threading.Event()
        self.link = _BrokerLink(config.cluster.broker)
        self.producer_s: list[float] = []  # time spent per photo enqueued (hash + publish)

    def reconfigure(self, config: Config) -> None:
        """New photos carry the new config's hash (the workers read their own config)."""
        self.config = config

    # -- the dispatcher thread -------------------------------------------------------
    def run(self) -> None:
        from . import MissingExtra, require_cluster_extra

        try:
            require_cluster_extra()
        except MissingExtra as exc:
            self._on_fatal(self, str(exc))
            return
        from .app import daemon_id_for, make_app, outcomes_key, redis_client

        cluster = self.config.cluster
        self.app = make_app(cluster)
        self.redis = redis_client(cluster)
        self.reply_to = outcomes_key(daemon_id_for(socket.gethostname(), str(self.state_dir)))
        from .lost import LostWatch

        self._lost = LostWatch(check_s=cluster.lost_check_s,
                               overdue_s=cluster.visibility_timeout_s + cluster.time_limit_s,
                               queues=(cluster.queue, cluster.gpu_queue), reply_to=self.reply_to)
        listener = threading.Thread(target=self._listen, name="skinretouch-cluster-outcomes", daemon=True)
        listener.start()
        self.ready.set()
        self._on_ready(self)
        log.info("cluster_dispatcher_ready", queue=cluster.queue, reply_to=self.reply_to)
        try:
            while not self._abandon.is_set():
                job = self.queue.get(timeout=0.5)
                if job is STOP:
                    return
                if job is None:
                    continue
                self._dispatch(job)
        except Exception:
            log.exception("cluster_dispatcher_failed")
            self._on_fatal(self, "the cluster dispatcher failed")
        finally:
            self._stop_listening.set()
            listener.join(OUTCOME_WAIT_S + 2.0)
            try:
                self.app.close()
            except Exception:
                pass

    def _dispatch(self, job: Job) -> None:
        reason = self._precheck(job)
        if reason is not None:
            self._finish(job, FileOutcome(input_path=job.path, status="skipped", reason=reason), 0.0)
            return
        with self._in_flight_lock:
            while len(self._flights) >= self.config.cluster.max_in_flight and not self._abandon.is_set():
                self._in_flight_lock.wait(0.5)
        started = time.perf_counter()
        try:
            sha256 = _file_sha256(job.path)
        except FileNotFoundError:
            self._finish(job, FileOutcome(input_path=job.path, status="skipped", reason="vanished before its turn"),
                         0.0)
            return
        except OSError as exc:
            reason = f"cannot read the photo: {exc.strerror or exc}"
            report = write_failed_report(job, reason, self._report_settings())
            self._finish(job, FileOutcome(input_path=job.path, status="failed", error=reason, report_path=report), 0.0)
            return
        payload = {
            "path": str(job.path),
            "root": str(job.root),
            "out_dir": str(job.out_dir) if job.out_dir else None,
            "sha256": sha256,
            "config_sha256": config_sha256(pipeline_config(self.config)),
            "force": job.force,
            "reply_to": self.reply_to,
            "queued_at": time.time(),
        }
        flight = self._track(job, payload)  # before sending: a fast worker's outcome may come first
        if not self._publish(flight):
            self._untrack(flight)
            return  # abandoned while the broker was down: the photo stays for the next start
        self.producer_s.append(time.perf_counter() - started)
        log.debug("photo_enqueued", path=str(job.path), task_id=flight.task_ids[-1], sha256=sha256)

    def _track(self, job: Job, payload: dict[str, Any]) -> _Flight:
        from .app import lock_key

        flight = _Flight(job=job, payload=payload,
                         lock=lock_key(payload["path"], payload["sha256"], payload["config_sha256"]))
        with self._in_flight_lock:
            self._flights.add(flight)
        self._new_task_id(flight)
        return flight

    def _new_task_id(self, flight: _Flight) -> str:
        task_id = str(uuid.uuid4())
        with self._in_flight_lock:
            flight.task_ids.append(task_id)
            flight.last_seen = time.monotonic()
            self._in_flight[task_id] = flight
        return task_id

    def _untrack(self, flight: _Flight) -> None:
        """The photo is finished (or given up): its task ids stop counting, its repeats are ignored."""
        with self._in_flight_lock:
            self._flights.discard(flight)
            for task_id in flight.task_ids:
                self._in_flight.pop(task_id, None)
                self._retired[task_id] = None
            while len(self._retired) > RETIRED_IDS_KEPT:
                self._retired.popitem(last=False)
            self._in_flight_lock.notify_all()

    def _send(self, task_id: str, payload: dict[str, Any]) -> None:
        from .app import TASK_NAME

        with self._send_lock:  # the listener re-sends lost photos from its own thread
            self.app.send_task(TASK_NAME, kwargs=payload, task_id=task_id, queue=self.config.cluster.queue,
                               retry=False)

    def _publish(self, flight: _Flight) -> bool:
        delay = 0.2
        while True:
            try:
                self._send(flight.task_ids[-1], flight.payload)
                self._broker_worked("enqueue")
                return True
            except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, OSError
                self.link.failed("enqueue", exc)
                if self._abandon.wait(delay) or self.queue.closed:
                    return False
                delay = min(delay * 2, RECONNECT_MAX_S)
                # The failed send may have reached the queue with its reply lost: the next
                # goes under a new id, so that two copies are two tasks to the workers' lock.
                self._new_task_id(flight)

    def _broker_worked(self, where: str) -> None:
        if self.link.worked(where) and self._lost is not None:
            self._lost.broker_back(time.monotonic())

    def _resend(self, flight: _Flight, why: str) -> None:
        earlier = list(flight.task_ids)
        task_id = self._new_task_id(flight)
        log.warning("photo_resent", path=str(flight.job.path), task_id=task_id, earlier_task_ids=earlier,
                    reason=why)
        try:
            self._send(task_id, flight.payload)
        except Exception as exc:  # still away: the next look finds the photo missing again
            self.link.failed("enqueue", exc)

    def _look_for_lost(self) -> None:
        now = time.monotonic()
        if self._lost is None or not self._lost.due(now):
            return
        with self._in_flight_lock:
            flights = list(self._flights)
        try:
            lost = self._lost.look(self.redis, flights, now)
        except Exception as exc:  # the broker is away: the outcome listener says so
            self.link.failed("outcomes", exc)
            return
        for flight, why in lost:
            with self._in_flight_lock:
                live = flight in self._flights
            if live:
                self._resend(flight, why)

    # -- outcomes --------------------------------------------------------------------
    def _listen(self) -> None:
        delay = 0.2
        while not self._stop_listening.is_set():
            try:
                # Workers append (RPUSH): the oldest outcome is at the head.
                item = self.redis.blpop([self.reply_to], timeout=OUTCOME_WAIT_S)
                self._broker_worked("outcomes")
                delay = 0.2
            except Exception as exc:
                self.link.failed("outcomes", exc)
                self._stop_listening.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            if item is not None:
                try:
                    outcome = json.loads(item[1])
                except ValueError:
                    log.warning("outcome_unreadable", raw=item[1][:200])
                else:
                    self._take_outcome(outcome)
            self._look_for_lost()

    def _take_outcome(self, outcome: dict[str, Any]) -> None:
        task_id = outcome.get("task_id")
        status = outcome.get("status")
        holder = outcome.get("held_by")
        with self._in_flight_lock:
            flight = self._in_flight.get(task_id)
            retired = flight is None and task_id in self._retired
            other_copy_at_work = (flight is not None and status == "skipped" and holder != task_id
                                  and holder in flight.task_ids)
            if other_copy_at_work:
                # A second copy of this photo found an earlier one at work: that one's outcome counts.
                del self._in_flight[task_id]
                flight.task_ids.remove(task_id)
                self._retired[task_id] = None
        if flight is None:
            if retired:  # a repeat of a photo already recorded (a re-sent copy, a redelivery)
                log.info("photo_repeat_outcome_ignored", path=outcome.get("path"), status=status, task_id=task_id,
                         reason=outcome.get("reason"))
            else:  # sent by an earlier run of this daemon
                log.info("photo_outcome_of_earlier_run", path=outcome.get("path"), status=status,
                         task_id=task_id, runner=outcome.get("runner"))
            return
        if other_copy_at_work:
            log.info("photo_repeat_skipped", path=outcome.get("path"), task_id=task_id, held_by=holder)
            return
        self._untrack(flight)
        job = flight.job
        # "deferred": the worker met a passing error (its disk full...) and wrote no report;
        # the daemon tries the photo again later, as it does for its local workers.
        if status not in ("ok", "failed", "skipped", "deferred"):
            status, outcome["error"] = "failed", f"unknown outcome {status!r} from a worker"
        report: Path | None = output_paths(job.path, job.out_dir).report
        if status == "skipped" and outcome.get("already_done") and len(flight.task_ids) > 1:
            # An earlier copy wrote the outputs and its outcome never came: the photo is done.
            status, outcome["reason"] = "ok", None
            outcome["timings_ms"] = (read_report(report) or {}).get("timings_ms") if report else None
        if status == "failed" and not outcome.get("report_written"):
            # The worker could not write beside the photo (it cannot see it): the daemon can.
            report = write_failed_report(job, outcome.get("error") or "failed on a worker", self._report_settings())
        elif report is not None and not report.exists():
            report = None
        result = FileOutcome(input_path=job.path, status=status, error=outcome.get("error"),
                             reason=outcome.get("reason"), report_path=report,
                             timings_ms=dict(outcome.get("timings_ms") or {}))
        self._finish(job, result, time.monotonic() - flight.first_sent)

    def _report_settings(self) -> dict[str, Any]:
        """``settings`` of a report the daemon writes itself (no pipeline is loaded here)."""
        return {"config_sha256": config_sha256(pipeline_config(self.config)), "detector": "none (daemon)",
                "mask_dilation_px": self.config.mask.dilation_px}

    def _finish(self, job: Job, outcome: FileOutcome, seconds: float) -> None:
        try:
            self._on_outcome(job, outcome, seconds)
        finally:
            self.queue.task_done(job)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
