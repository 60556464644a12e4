"""The cluster's part of ``skinretouch status``: queue depths and the workers seen."""

from __future__ import annotations

import time
from typing import TextIO

from ..config import ClusterConfig

__all__ = ["print_cluster_status"]


def print_cluster_status(cluster: ClusterConfig, out: TextIO) -> None:
    """Print what the broker holds now; says so (and why) when it cannot be asked."""
    from . import MissingExtra, require_cluster_extra

    print(f"  cluster:  celery, broker {_redact(cluster.broker)}", file=out)
    try:
        require_cluster_extra()
    except MissingExtra as exc:
        print(f"    unavailable: {exc}", file=out)
        return
    from .app import redis_client
    from .registry import in_progress, queue_depths, workers_seen

    try:
        redis = redis_client(cluster)
        depths = queue_depths(redis, [cluster.queue, cluster.gpu_queue])
        taken = in_progress(redis)
        workers = workers_seen(redis)
    except Exception as exc:
        print(f"    broker unreachable: {type(exc).__name__}: {exc}", file=out)
        return
    waiting = "   ".join(f"{queue}: {depth}" for queue, depth in depths.items())
    print(f"    waiting:  {waiting}   taken by workers: {taken}", file=out)
    print(f"    workers:  {len(workers)} seen", file=out)
    now = time.time()
    for worker in workers:
        print(f"      {worker.get('node')}  queues {','.join(worker.get('queues') or [])}  "
              f"concurrency {worker.get('concurrency')}  (seen {now - worker.get('seen_at', now):.0f} s ago)",
              file=out)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***@{rest.split('@', 1)[1]}" if "@" in rest else url
