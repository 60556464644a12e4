"""Finding the photos a broker lost: sent, yet in no queue, with no worker, with no outcome.

Celery's Redis transport takes a message off its queue (``BRPOP``) and records it as
taken (kombu's ``unacked`` hash) in a second command. ``BRPOP`` removes the element (and
logs the removal to the append-only file) when it queues its reply; a Redis that shuts
down in that instant never sends the reply, and one that stops before the second command
never learns the message was taken. Either way no worker will ever run that photo (seen in
restart stress runs: the message's last trace in the append-only file is its pop, right
before the shutdown). The daemon's own ``BRPOP`` of a worker's outcome can vanish the same
way, and a Redis that loses its last writes (``appendfsync everysec`` and a crash) drops
messages it had accepted.

The daemon knows what it sent, so it looks: a photo is *lost* when none of its task ids is
waiting in a queue, taken by a worker, holding the photo's lock or waiting in the
daemon's outcome list, at two looks ``check_s`` apart (a message is between two of those
places for milliseconds). It looks at every photo after the broker restarted (its
``run_id`` changed, or the daemon lost and regained it), and at a photo whose outcome is
overdue (``overdue_s`` after it was sent or last seen waiting).

Right after a restart a photo that is only *taken* (in the unacked hash) with no task
holding its lock counts as lost too: a worker's consumer that lost its connection while
handing the message to its pool forgets it, and kombu would give it out again only after
the visibility timeout (an hour by default). The copy sent now runs at once; the old one,
restored later, finds the outputs complete.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

__all__ = ["LostWatch", "TrackedPhoto", "tasks_known_to_redis"]

UNACKED_KEY = "unacked"  # kombu's hash of the messages workers took and have not acknowledged


class TrackedPhoto(Protocol):
    """What the watch needs of a photo the daemon sent (the dispatcher's record)."""

    task_ids: list[str]
    lock: str  # the key held by the task working on it
    last_seen: float  # monotonic: sent, or last found waiting


def tasks_known_to_redis(redis: Any, *, queues: Sequence[str], reply_to: str,
                         locks: Sequence[str]) -> dict[str, str]:
    """Where Redis knows each task id from: ``"waiting"`` in ``queues``, ``"taken"`` by a
    worker, ``"working"`` (holding one of ``locks``), ``"finished"`` (its outcome still in
    ``reply_to``); one round trip. A later place wins."""
    pipe = redis.pipeline(transaction=False)
    for queue in queues:
        pipe.lrange(queue, 0, -1)
    pipe.hvals(UNACKED_KEY)
    pipe.lrange(reply_to, 0, -1)
    if locks:
        pipe.mget(list(locks))
    replies = pipe.execute()
    found: dict[str | None, str] = {}
    for waiting in replies[: len(queues)]:
        found.update((_message_task_id(raw), "waiting") for raw in waiting)
    found.update((_taken_task_id(raw), "taken") for raw in replies[len(queues)])
    if locks:
        found.update((_text(holder), "working") for holder in replies[len(queues) + 2])
    found.update((_outcome_task_id(raw), "finished") for raw in replies[len(queues) + 1])
    found.pop(None, None)
    return found  # type: ignore[return-value]


class LostWatch:
    """When to look in Redis, and which of the photos looked at are lost.

    Parameters
    ----------
    check_s : float
        Seconds between looks; a photo missing at two looks this far apart is lost.
    overdue_s : float
        A photo not seen for this long (seconds) is looked for even without a restart.
    queues, reply_to
        Where the daemon's tasks wait, and its outcome list.
    """

    def __init__(self, *, check_s: float, overdue_s: float, queues: Sequence[str], reply_to: str) -> None:
        self.check_s = check_s
        self.overdue_s = overdue_s
        self.queues = tuple(queues)
        self.reply_to = reply_to
        self._next_look = 0.0
        self._look_at_all_until = 0.0
        self._run_id: str | None = None
        self._missing_since: dict[int, float] = {}  # id(photo) -> first look that missed it
        self._lock = threading.Lock()

    def broker_back(self, now: float) -> None:
        """The broker answered again after failing: look at every photo, twice."""
        with self._lock:
            self._look_at_all_until = now + 2.5 * self.check_s
            self._next_look = min(self._next_look, now + self.check_s)

    def due(self, now: float) -> bool:
        return now >= self._next_look

    def look(self, redis: Any, photos: Iterable[TrackedPhoto], now: float) -> list[tuple[TrackedPhoto, str]]:
        """Look once; returns the lost photos, each with why it was looked at."""
        self._next_look = now + self.check_s
        run_id = _text(redis.info("server").get("run_id"))
        if self._run_id is not None and run_id != self._run_id:
            self.broker_back(now)
        self._run_id = run_id
        everyone = now < self._look_at_all_until
        photos = list(photos)
        with self._lock:
            live = {id(photo) for photo in photos}
            self._missing_since = {key: t for key, t in self._missing_since.items() if key in live}
            looked = [p for p in photos if everyone or id(p) in self._missing_since
                      or now - p.last_seen > self.overdue_s]
        if not looked:
            return []
        known = tasks_known_to_redis(redis, queues=self.queues, reply_to=self.reply_to,
                                     locks=sorted({p.lock for p in looked}))
        # After a restart a message only taken (no task holds the photo's lock) is an orphan.
        present = {"waiting", "working", "finished"} if everyone else {"waiting", "taken", "working", "finished"}
        lost = []
        with self._lock:
            for photo in looked:
                if any(known.get(task_id) in present for task_id in photo.task_ids):
                    self._missing_since.pop(id(photo), None)
                    photo.last_seen = now
                    continue
                since = self._missing_since.setdefault(id(photo), now)
                if now - since >= self.check_s:
                    del self._missing_since[id(photo)]
                    why = "after a broker restart" if everyone else f"outcome overdue ({self.overdue_s:g} s)"
                    lost.append((photo, f"in no queue, with no task at work on it and without an outcome at two looks "
                                        f"{now - since:.1f} s apart, {why}"))
        return lost


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _message_task_id(raw: Any) -> str | None:
    try:
        return json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None


def _taken_task_id(raw: Any) -> str | None:
    try:
        message, _exchange, _routing_key = json.loads(raw)
        return message["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None


def _outcome_task_id(raw: Any) -> str | None:
    try:
        return json.loads(raw).get("task_id")
    except (ValueError, AttributeError):
        return None
