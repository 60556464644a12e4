"""Several machines on one hot folder: the daemon enqueues, Celery workers retouch.

The daemon stays the single producer (it watches, settles and enqueues one task per
photo) and the only writer of its status; ``skinretouch worker`` processes on any
machine load the pipeline once per process, read the photo from the shared folder and
write its outputs beside it, atomically, exactly as the local mode does.

celery and redis come with the ``cluster`` extra and are imported only here, on first
use, so a base install runs everything else without them.
"""

from __future__ import annotations

__all__ = ["MissingExtra", "require_cluster_extra"]


class MissingExtra(Exception):
    """celery or redis is not installed; the message says which extra to install."""


def require_cluster_extra() -> None:
    """Raise :class:`MissingExtra` unless celery and redis can be imported."""
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            f"the cluster mode needs the 'cluster' extra ({exc.name} is not installed): "
            "pip install 'skinretouch[cluster]'"
        ) from None
