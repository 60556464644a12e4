"""Workers seen and queue depths, read from the broker's Redis.

Each ``skinretouch worker`` refreshes a small expiring key while it runs, so a worker
that is gone drops out of the list within :data:`HEARTBEAT_TTL_S`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from ..logs import get_logger
from .app import KEY_PREFIX, worker_key

__all__ = ["HEARTBEAT_S", "HEARTBEAT_TTL_S", "Heartbeat", "queue_depths", "workers_seen"]

log = get_logger(__name__)

HEARTBEAT_S = 5.0
HEARTBEAT_TTL_S = 20.0


class Heartbeat(threading.Thread):
    """Refreshes ``skinretouch:worker:<node>`` every :data:`HEARTBEAT_S` until stopped."""

    def __init__(self, redis: Any, node: str, info: dict[str, Any]) -> None:
        super().__init__(name="skinretouch-heartbeat", daemon=True)
        self.redis, self.node, self.info = redis, node, dict(info)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.redis.set(worker_key(self.node), json.dumps({**self.info, "seen_at": time.time()}),
                               ex=int(HEARTBEAT_TTL_S))
            except Exception as exc:  # the broker is down: the worker reconnects by itself
                log.debug("heartbeat_failed", error=str(exc))
            self._stop_event.wait(HEARTBEAT_S)

    def stop(self) -> None:
        self._stop_event.set()
        try:
            self.redis.delete(worker_key(self.node))
        except Exception:
            pass


def workers_seen(redis: Any) -> list[dict[str, Any]]:
    """The live workers' heartbeat records, by node name."""
    workers = []
    for key in sorted(redis.scan_iter(match=f"{KEY_PREFIX}worker:*", count=500)):
        raw = redis.get(key)
        if raw:
            try:
                workers.append(json.loads(raw))
            except ValueError:
                pass
    return workers


def consumes(workers: list[dict[str, Any]], queue: str) -> bool:
    return any(queue in (worker.get("queues") or []) for worker in workers)


def queue_depths(redis: Any, queues: list[str]) -> dict[str, int]:
    """Photos waiting in each queue (not yet taken by a worker)."""
    return {queue: int(redis.llen(queue)) for queue in queues}


def in_progress(redis: Any) -> int:
    """Messages taken by workers and not yet acknowledged (kombu's ``unacked`` hash)."""
    return int(redis.hlen("unacked"))
