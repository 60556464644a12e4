"""Where the daemon hands a settled photo on: its own worker processes, or a cluster.

A dispatcher is a thread that takes jobs from the :class:`~.queue.JobQueue` and reports
each outcome through the daemon's callbacks; it has ``ready`` (an Event), ``reconfigure``
and ``is_alive``. ``cluster.backend`` picks the kind: ``"local"`` (one
:class:`~.worker.WorkerSlot` per ``daemon.workers``) or ``"celery"`` (one
:class:`skinretouch.cluster.dispatch.CeleryDispatcher`, imported only then).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from ..files.outcome import FileOutcome
from .queue import Job, JobQueue
from .worker import WorkerSlot

__all__ = ["start_dispatchers"]


def start_dispatchers(
    config: Config,
    queue: JobQueue,
    *,
    state_dir: Path,
    factory_ref: str,
    on_outcome: Callable[[Job, FileOutcome, float], None],
    on_ready: Callable[[Any], None],
    on_fatal: Callable[[Any, str], None],
    abandon: threading.Event,
    precheck: Callable[[Job], str | None],
) -> list[Any]:
    """Start the configured dispatchers; they load in the background (wait on ``ready``)."""
    if config.cluster.backend == "celery":
        from ..cluster.dispatch import CeleryDispatcher

        dispatchers: list[Any] = [
            CeleryDispatcher(queue, config=config, state_dir=state_dir, on_outcome=on_outcome, on_ready=on_ready,
                             on_fatal=on_fatal, abandon=abandon, precheck=precheck)
        ]
    else:
        dispatchers = [
            WorkerSlot(index, queue, config=config, factory_ref=factory_ref, on_outcome=on_outcome,
                       on_ready=on_ready, on_fatal=on_fatal, abandon=abandon, precheck=precheck)
            for index in range(config.daemon.workers)
        ]
    for dispatcher in dispatchers:
        dispatcher.start()
    return dispatchers
