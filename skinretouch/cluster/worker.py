"""``skinretouch worker``: a Celery worker that retouches photos from the shared hot folder.

One main process takes messages from the broker and hands each to a pool process
(``--concurrency`` of them, 1 by default: the pipeline already uses every core for one
photo). Each pool process loads the pipeline once, when it starts, so a crash while
decoding a photo costs that pool process, not the worker; the task is then rejected back
onto the queue and redelivered.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..config import Config, pipeline_config
from ..logs import bind_contextvars, configure_logging, get_logger
from . import require_cluster_extra
from .app import TASK_NAME, make_app, redis_client

__all__ = ["DEFAULT_RETOUCHER", "build_worker_app", "run_worker"]

log = get_logger(__name__)

DEFAULT_RETOUCHER = "skinretouch.files.stage:RetouchFiles"


class _StdlibToStructlog(logging.Handler):
    """Celery's own messages (stdlib logging) as structlog events, so the worker's whole
    output is one JSON line per event under systemd."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        event = {"logger": record.name}
        if record.exc_info:
            event["exc_info"] = record.exc_info
        get_logger(record.name).log(record.levelno, message, **event)


def _configure_logging(config: Config) -> None:
    configure_logging(config.logging, stream=sys.stdout)
    root = logging.getLogger()
    root.handlers[:] = [_StdlibToStructlog()]


def _load_factory(reference: str) -> Callable[[Config], Any]:
    """The ``(Config) -> FileProcessor`` named by ``"module:attribute"``."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_worker_app(config: Config, *, queues: tuple[str, ...], node: str, retoucher_factory: str) -> Any:
    """The worker's Celery app: the retouch task, and the pipeline loaded per pool process."""
    from celery import signals

    from .tasks import WorkerContext, run_photo

    app = make_app(config.cluster)
    contexts: dict[int, WorkerContext] = {}  # by pid: one per pool process

    def load_pipeline(**_: Any) -> None:
        _configure_logging(config)
        bind_contextvars(worker=node, pid=os.getpid())
        factory = _load_factory(retoucher_factory)
        processor = factory(pipeline_config(config))
        warm_up = getattr(processor, "warm_up", None)
        if callable(warm_up):
            warm_up()
        contexts[os.getpid()] = WorkerContext(config=config, processor=processor, redis=redis_client(config.cluster),
                                              node=node, queues=queues)
        log.info("worker_process_ready", queues=list(queues))

    signals.worker_process_init.connect(load_pipeline, weak=False)

    timed_out: set[str | None] = set()

    def after_hard_time_limit(sender: Any = None, task_id: str | None = None, exception: Any = None,
                              kwargs: dict[str, Any] | None = None, **_: Any) -> None:
        """The pool process was killed at the hard time limit (a photo stuck in native code):
        this main process tells the daemon, which would otherwise wait for the photo forever."""
        from celery.exceptions import TimeLimitExceeded

        if not isinstance(exception, TimeLimitExceeded) or not kwargs or "reply_to" not in kwargs:
            return
        if task_id in timed_out:  # Celery sends the signal from its timeout and its failure paths
            return
        timed_out.add(task_id)
        from .tasks import report_hard_time_limit

        report_hard_time_limit(config, node=node, task_id=task_id, payload=kwargs, redis=redis_client(config.cluster))

    signals.task_failure.connect(after_hard_time_limit, weak=False)

    @app.task(name=TASK_NAME, bind=True)
    def retouch(self: Any, **payload: Any) -> dict[str, Any]:
        context = contexts.get(os.getpid())
        if context is None:  # solo pool, or a pool process started before the signal was wired
            load_pipeline()
            context = contexts[os.getpid()]
        return run_photo(self, context, payload)

    return app


def run_worker(
    config: Config,
    *,
    queues: tuple[str, ...] | None = None,
    concurrency: int = 1,
    retoucher_factory: str = DEFAULT_RETOUCHER,
    node: str | None = None,
) -> int:
    """Run a worker until SIGTERM (a warm shutdown: the current photos finish)."""
    require_cluster_extra()
    from celery import signals

    from .registry import Heartbeat

    _configure_logging(config)
    # Connected, this signal tells Celery to leave logging as configured here.
    signals.setup_logging.connect(_keep_logging, weak=False)
    queues = tuple(queues or (config.cluster.queue,))
    node = node or f"skinretouch-{os.getpid()}@{socket.gethostname()}"
    app = build_worker_app(config, queues=queues, node=node, retoucher_factory=retoucher_factory)
    heartbeat = Heartbeat(
        redis_client(config.cluster), node,
        {"node": node, "host": socket.gethostname(), "pid": os.getpid(), "queues": list(queues),
         "concurrency": concurrency},
    )
    heartbeat.start()
    log.info("worker_starting", node=node, queues=list(queues), concurrency=concurrency,
             broker=_redact(config.cluster.broker))
    try:
        app.worker_main([
            "worker", f"--queues={','.join(queues)}", f"--concurrency={concurrency}", "--pool=prefork",
            f"--hostname={node}", "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--loglevel={config.logging.level.upper()}",
        ])
    finally:
        heartbeat.stop()
    return 0


def _keep_logging(**_: Any) -> None:
    pass


def _redact(url: str) -> str:
    """The broker URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
