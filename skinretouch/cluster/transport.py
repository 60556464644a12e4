"""kombu's Redis transport with one repair the cluster relies on: a worker never stalls
on an acknowledgement the broker did not take.

kombu's Redis QoS removes a message from Redis' unacked set and only then frees the
consumer's prefetch slot; when Redis goes away between the task's end and that removal
(a restart), the removal raises, the slot stays taken, and with prefetch 1 the worker
asks the broker for nothing ever again, idle with a live heartbeat (seen in our restart
stress runs; Celery logs only ``Couldn't ack``). Here the slot is freed anyway: the
message stays in the unacked set, Redis hands it out again after the visibility timeout,
and the repeat finds the photo's outputs complete and does nothing.

Selected with Celery's ``broker_transport`` (see :func:`~skinretouch.cluster.app.make_app`).
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

__all__ = ["Transport"]


class QoS(kombu_redis.QoS):
    """Frees the prefetch slot of a message even when Redis did not take its ack or reject."""

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)  # only the local bookkeeping
            raise

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except self.channel.connection_errors:
            virtual.QoS.ack(self, delivery_tag)
            raise


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
