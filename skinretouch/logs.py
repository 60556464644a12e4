"""structlog set-up: JSON lines for the service, readable lines on a terminal."""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any, TextIO

import structlog

from .config import LoggingConfig

__all__ = ["configure_logging"]


class _CurrentStream:
    """``sys.stdout`` or ``sys.stderr`` as it is at each write, not as it was when logging
    was configured (they are replaced under test runners and by daemonising tools)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return getattr(sys, self.name).write(text)

    def flush(self) -> None:
        getattr(sys, self.name).flush()

    def isatty(self) -> bool:
        return getattr(sys, self.name).isatty()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "nan", "inf": JSON has no such numbers
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _strict_json(event: dict[str, Any], **kwargs: Any) -> str:
    """One valid JSON line, even if a value is NaN or infinite (written as a string)."""
    return json.dumps(_finite(event), allow_nan=False, **kwargs)


def configure_logging(config: LoggingConfig, *, stream: TextIO | None = None) -> None:
    """Route structlog (and stdlib logging) to ``stream`` in the configured format.

    ``stream`` defaults to standard error; ``sys.stdout`` and ``sys.stderr`` are looked up
    at each write. ``format = "auto"`` gives JSON unless the stream is a terminal, so the
    same command logs readable lines by hand and JSON under systemd.
    """
    if stream is None or stream is sys.stderr:
        stream = _CurrentStream("stderr")
    elif stream is sys.stdout:
        stream = _CurrentStream("stdout")
    use_json = config.format == "json" or (config.format == "auto" and not stream.isatty())
    level = getattr(logging, config.level.upper())
    renderer = (
        structlog.processors.JSONRenderer(serializer=_strict_json)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=stream, format="%(levelname)s %(name)s: %(message)s", force=True)
