"""The Celery application both sides build from ``[cluster]``, and the Redis keys they share."""

from __future__ import annotations

import hashlib
from typing import Any

from ..config import ClusterConfig
from . import require_cluster_extra

__all__ = [
    "TASK_NAME",
    "deliveries_key",
    "lock_key",
    "make_app",
    "outcomes_key",
    "redis_client",
    "worker_key",
]

TASK_NAME = "skinretouch.retouch"
KEY_PREFIX = "skinretouch:"
# A hard time limit this much after the soft one (at most the soft limit again): the soft
# one lets the photo end with a failed report, the hard one kills a photo stuck in native code.
HARD_LIMIT_MARGIN_S = 30.0
# kombu's Redis transport, repaired so that a worker never stalls on a lost ack (see there).
TRANSPORT = "skinretouch.cluster.transport:Transport"


def outcomes_key(daemon_id: str) -> str:
    """The list a daemon reads its photos' outcomes from (one per daemon, stable across restarts)."""
    return f"{KEY_PREFIX}outcomes:{daemon_id}"


def daemon_id_for(host: str, state_dir: str) -> str:
    return f"{host}:{hashlib.sha256(state_dir.encode()).hexdigest()[:12]}"


def worker_key(node: str) -> str:
    return f"{KEY_PREFIX}worker:{node}"


def lock_key(path: str, sha256: str, config_sha256: str) -> str:
    """Held by the task working on one photo file, with one content and one pipeline config."""
    where = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{KEY_PREFIX}lock:{where}:{sha256}:{config_sha256}"


def deliveries_key(task_id: str) -> str:
    """How many times a task started without finishing (its worker process died)."""
    return f"{KEY_PREFIX}deliveries:{task_id}"


def redis_client(cluster: ClusterConfig) -> Any:
    """A redis-py client on the broker; it reconnects by itself on the next command."""
    require_cluster_extra()
    import redis

    return redis.Redis.from_url(cluster.broker, socket_timeout=10.0, socket_connect_timeout=5.0,
                                health_check_interval=15)


def make_app(cluster: ClusterConfig) -> Any:
    """A Celery app on the broker with the delivery guarantees the cluster relies on.

    Acks late (a photo's message is acknowledged after its outputs are written) with the
    task rejected back onto the queue when its worker process dies, prefetch 1 (a worker
    holds only the photo it works on), and a visibility timeout above the time limit (a
    photo whose whole worker machine vanished goes to another worker, a slow one is never
    handed out twice). No result backend: outcomes go to the daemon's own list.
    """
    require_cluster_extra()
    from celery import Celery

    app = Celery("skinretouch", broker=cluster.broker, set_as_current=False)
    app.conf.update(
        broker_transport=TRANSPORT,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=cluster.queue,
        task_create_missing_queues=True,
        task_soft_time_limit=cluster.time_limit_s,
        task_time_limit=cluster.time_limit_s + min(HARD_LIMIT_MARGIN_S, cluster.time_limit_s),
        # Workers look for photos of vanished workers every 10 s (kombu's default checks only
        # every 10th time, i.e. every 100 s); a photo goes back once its timeout has passed.
        broker_transport_options={"visibility_timeout": cluster.visibility_timeout_s,
                                  "unacked_restore_interval": 10, "unacked_restore_throttle": 1},
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Loading and warming the pipeline in a fresh pool process takes seconds.
        worker_proc_alive_timeout=300.0,
        # A dead pool process's task goes back on the queue after this wait for a result
        # the process might have sent; ours send theirs to the daemon's list themselves.
        worker_lost_wait=1.0,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
    )
    return app
