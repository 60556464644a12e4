"""The task a Celery worker runs for one photo: exactly-once in effect.

Delivery is at-least-once (acks late, rejected back onto the queue when the worker process
dies), so the task makes a repeat harmless: a photo's outputs are keyed by its sha256 and
the pipeline config's hash, a redelivered task that finds them complete does nothing, a
lock in Redis keeps two deliveries of one photo from running at once, and every output is
written atomically. A photo whose worker process keeps dying gets a ``failed`` report after
``cluster.max_deliveries`` starts instead of killing workers forever.

The outcome of every task goes to the daemon's list in Redis (``reply_to``): the daemon is
the only writer of its status.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery.exceptions import Retry

from ..atomic import atomic_write_bytes
from ..config import Config, config_sha256, pipeline_config
from ..daemon.paths import temp_names_for
from ..daemon.queue import Job
from ..daemon.worker import write_failed_report
from ..files.report import read_report
from ..logs import bind_contextvars, get_logger, unbind_contextvars
from ..sidecars import output_paths
from .app import TASK_NAME, deliveries_key, lock_key
from .paths import PathMap
from .registry import consumes, workers_seen
from .routing import HardCaseRouter, NeedsGpu

__all__ = ["PathNotVisible", "WorkerContext", "run_photo"]

log = get_logger(__name__)

DELIVERIES_TTL_S = 7 * 24 * 3600
REDIS_WAIT_S = 120.0  # how long a finished photo waits for a restarting broker


class PathNotVisible(Exception):
    """The shared folder is not where the path mapping says it is on this worker."""


@dataclass
class WorkerContext:
    """What one worker process loads once: config, pipeline, broker client, identity."""

    config: Config
    processor: Any  # a skinretouch.files.outcome.FileProcessor
    redis: Any
    node: str
    queues: tuple[str, ...]
    paths: PathMap = field(init=False)
    config_sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.paths = PathMap.parse(self.config.cluster.path_map)
        self.config_sha256 = config_sha256(pipeline_config(self.config))

    @property
    def runner(self) -> dict[str, Any]:
        return {"backend": "celery", "host": socket.gethostname(), "worker": self.node, "pid": os.getpid(),
                "queues": list(self.queues)}


def run_photo(task: Any, context: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Process the photo of one task message; returns (and sends the daemon) its outcome.

    ``payload``: ``path``, ``root`` and ``out_dir`` as the daemon sees them, ``sha256`` of
    the photo when it was enqueued, ``config_sha256`` of the daemon's pipeline config,
    ``force``, ``reply_to`` (the daemon's outcome list).
    """
    task_id = task.request.id
    bind_contextvars(task_id=task_id, path=payload["path"])
    started = time.perf_counter()
    try:
        outcome = _run(task, context, payload)
    except Retry:
        raise
    except Exception as exc:  # a bug or the soft time limit outside the file stage: still an outcome
        log.exception("task_failed")
        outcome = _failed_here(context, payload, f"failed on worker {context.node}: {type(exc).__name__}: {exc}")
    finally:
        unbind_contextvars("task_id", "path")
    outcome.update(task_id=task_id, path=payload["path"], runner=context.runner,
                   seconds=round(time.perf_counter() - started, 4))
    _with_redis(lambda: context.redis.delete(deliveries_key(task_id)))
    if outcome["status"] == "forward":
        # Same task id: the daemon's outcome comes from the GPU worker.
        task.app.send_task(TASK_NAME, kwargs={**payload, "may_forward": False}, task_id=task_id,
                           queue=outcome["queue"])
        return outcome
    _with_redis(lambda: context.redis.rpush(payload["reply_to"], json.dumps(outcome)))
    return outcome


def report_hard_time_limit(config: Config, *, node: str, task_id: str | None, payload: dict[str, Any],
                           redis: Any) -> None:
    """A ``failed`` report and outcome for a photo killed at the hard time limit (called in the
    worker's main process, which has no pipeline: the report's settings say so)."""
    paths = PathMap.parse(config.cluster.path_map)
    out_dir = paths.to_local(payload["out_dir"]) if payload.get("out_dir") else None
    job = Job(path=Path(paths.to_local(payload["path"])), root=Path(paths.to_local(payload["root"])),
              out_dir=Path(out_dir) if out_dir else None)
    reason = (f"killed on worker {node}: still running at the hard time limit "
              f"(cluster.time_limit_s = {config.cluster.time_limit_s:g} s, then the grace time)")
    log.error("photo_hard_time_limit", task_id=task_id, path=payload["path"])
    settings = {"config_sha256": config_sha256(pipeline_config(config)), "detector": "none (killed)",
                "mask_dilation_px": config.mask.dilation_px}
    written = False
    if job.root.is_dir():
        _remove_temps(job)
        written = write_failed_report(job, reason, settings) is not None
    outcome = {"status": "failed", "error": reason, "report_written": written, "task_id": task_id,
               "path": payload["path"], "runner": {"backend": "celery", "host": socket.gethostname(), "worker": node}}
    _with_redis(lambda: redis.rpush(payload["reply_to"], json.dumps(outcome)))
    _with_redis(lambda: redis.delete(deliveries_key(task_id or "")))


def _failed_here(context: WorkerContext, payload: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed outcome, with its report beside the photo when this worker can write it."""
    out_dir = context.paths.to_local(payload["out_dir"]) if payload.get("out_dir") else None
    job = Job(path=Path(context.paths.to_local(payload["path"])), root=Path(context.paths.to_local(payload["root"])),
              out_dir=Path(out_dir) if out_dir else None)
    try:
        settings = context.processor.report_settings()
    except Exception:
        settings = {}
    report = write_failed_report(job, reason, settings) if job.root.is_dir() else None
    return {"status": "failed", "error": reason, "report_written": report is not None}


def _run(task: Any, context: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    cluster = context.config.cluster
    task_id = task.request.id
    starts = _with_redis(lambda: _count_start(context.redis, task_id))
    path = Path(context.paths.to_local(payload["path"]))
    root = Path(context.paths.to_local(payload["root"]))
    out_dir = Path(context.paths.to_local(payload["out_dir"])) if payload.get("out_dir") else None
    job = Job(path=path, root=root, out_dir=out_dir, force=bool(payload.get("force")))

    if not root.is_dir():
        error = (
            f"{path}: not visible on worker {context.node} (host {socket.gethostname()}): the daemon's hot folder "
            f"{payload['root']} is {root} here by {context.paths.describe()}; mount the shared folder there "
            "or fix cluster.path_map in this worker's config"
        )
        if task.request.retries < cluster.max_retries:
            log.warning("path_not_visible_retrying", error=error, retry=task.request.retries + 1)
            _with_redis(lambda: context.redis.delete(deliveries_key(task_id)))
            raise task.retry(exc=PathNotVisible(error), countdown=cluster.retry_backoff_s * 2**task.request.retries,
                             max_retries=cluster.max_retries)
        log.error("path_not_visible", error=error)
        return {"status": "failed", "error": error, "report_written": False}

    if starts > cluster.max_deliveries:
        reason = (f"the worker process died {starts - 1} times while processing this photo "
                  "(a crash or an out-of-memory kill); not retried")
        log.error("photo_kills_workers", starts=starts - 1)
        _remove_temps(job)
        report = write_failed_report(job, reason, context.processor.report_settings())
        return {"status": "failed", "error": reason, "report_written": report is not None}

    if not path.exists():
        return {"status": "skipped", "error": None, "reason": "vanished before its turn"}

    lock = lock_key(payload["path"], payload["sha256"], context.config_sha256)
    holder = _with_redis(lambda: _take_lock(context.redis, lock, task_id, cluster.visibility_timeout_s))
    if holder != task_id:
        log.info("photo_in_progress_elsewhere", holder=holder)
        return {"status": "skipped", "error": None, "reason": f"being processed by task {holder}", "held_by": holder}
    try:
        if payload.get("config_sha256") != context.config_sha256:
            log.warning("config_differs_from_daemon", daemon=payload.get("config_sha256"),
                        worker=context.config_sha256)
        _remove_temps(job)  # left by a delivery whose worker died; nobody else writes them (lock)
        if not job.force and _outputs_complete(job, payload["sha256"], context.config_sha256):
            log.info("photo_already_done")
            return {"status": "skipped", "error": None, "reason": "outputs complete for this content and config",
                    "already_done": True}
        processor = context.processor
        gpu_queue = cluster.gpu_queue
        try:
            if payload.get("may_forward", True) and gpu_queue not in context.queues and hasattr(processor, "retoucher"):
                from ..files.stage import process_file

                router = HardCaseRouter(processor.retoucher, lambda: _gpu_workers_up(context.redis, gpu_queue))
                outcome = process_file(router, path, out_dir=out_dir, force=True)
            else:
                outcome = processor.process_file(path, out_dir=out_dir, force=True)
        except NeedsGpu as exc:
            log.info("photo_to_gpu_queue", queue=gpu_queue, hard_cases=len(exc.regions))
            return {"status": "forward", "queue": gpu_queue}
        if outcome.report_path is not None:
            _stamp_runner(Path(outcome.report_path), context.runner)
        log.info("photo", status=outcome.status, error=outcome.error,
                 timings_ms=dict(outcome.timings_ms or {}))
        return {"status": outcome.status, "error": outcome.error, "report_written": outcome.report_path is not None,
                "timings_ms": dict(outcome.timings_ms or {})}
    finally:
        _with_redis(lambda: _release_lock(context.redis, lock, task_id))


def _gpu_workers_up(redis: Any, gpu_queue: str) -> bool:
    try:
        return consumes(workers_seen(redis), gpu_queue)
    except Exception:  # the broker is down: finish here rather than wait
        return False


def _count_start(redis: Any, task_id: str) -> int:
    key = deliveries_key(task_id)
    starts = int(redis.incr(key))
    redis.expire(key, DELIVERIES_TTL_S)
    return starts


def _take_lock(redis: Any, key: str, task_id: str, ttl_s: float) -> str:
    """The task holding ``key`` after trying to take it; a redelivery takes its own lock back."""
    if redis.set(key, task_id, nx=True, ex=int(ttl_s)):
        return task_id
    holder = redis.get(key)
    holder = holder.decode() if isinstance(holder, bytes) else holder
    if holder is None:  # expired meanwhile
        return task_id if redis.set(key, task_id, nx=True, ex=int(ttl_s)) else _take_lock(redis, key, task_id, ttl_s)
    return holder


def _release_lock(redis: Any, key: str, task_id: str) -> None:
    holder = redis.get(key)
    if holder is not None and (holder.decode() if isinstance(holder, bytes) else holder) == task_id:
        redis.delete(key)


def _with_redis(operation: Any) -> Any:
    """Run a Redis operation, waiting for a restarting broker rather than losing a result."""
    import redis

    deadline = time.monotonic() + REDIS_WAIT_S
    delay = 0.2
    while True:
        try:
            return operation()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("broker_unreachable_waiting", error=str(exc))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _remove_temps(job: Job) -> int:
    folder, prefixes = temp_names_for(job.path, job.out_dir)
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if name.endswith(".tmp") and name.startswith(prefixes):
            try:
                (folder / name).unlink()
                removed += 1
            except OSError:
                pass
    if removed:
        log.info("stale_temps_removed", count=removed)
    return removed


def _outputs_complete(job: Job, sha256: str, config_hash: str) -> bool:
    paths = output_paths(job.path, job.out_dir)
    report = read_report(paths.report)
    if report is None or report.get("status") != "ok":
        return False
    if (report.get("input") or {}).get("sha256") != sha256:
        return False
    if (report.get("settings") or {}).get("config_sha256") != config_hash:
        return False
    return paths.image.exists() and paths.mask.exists()


def _stamp_runner(report_path: Path, runner: dict[str, Any]) -> None:
    """Add where the photo ran to its report (rewritten atomically)."""
    report = read_report(report_path)
    if report is None:
        return
    report["runner"] = runner
    atomic_write_bytes(report_path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
