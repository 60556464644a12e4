"""Stage timings in milliseconds."""

from __future__ import annotations

import time

__all__ = ["ms_since"]


def ms_since(started: float) -> float:
    """Milliseconds elapsed since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000.0
