"""structlog set-up: JSON lines for the service, readable lines on a terminal.

structlog is imported only when something logs: it costs ~100 ms (it imports ``rich``,
``pygments`` and ``asyncio``), and a plain ``skinretouch process`` logs nothing. Modules
take their logger from :func:`get_logger`, a proxy that imports structlog on first use;
:func:`configure_logging` before then only records the configuration, which that first
use applies.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from typing import Any, NamedTuple, TextIO

from .config import LoggingConfig

__all__ = ["bind_contextvars", "configure_logging", "get_logger", "unbind_contextvars"]


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


class _Settings(NamedTuple):
    """What :func:`configure_logging` decided, decided when it was called (the stream's
    ``isatty`` included), so applying it later gives the same output."""

    use_json: bool
    colors: bool
    level: int
    stream: Any


_lock = threading.Lock()
_pending: _Settings | None = None  # configured before structlog was imported


def _apply(settings: _Settings) -> None:
    import structlog

    renderer = (
        structlog.processors.JSONRenderer(serializer=_strict_json)
        if settings.use_json
        else structlog.dev.ConsoleRenderer(colors=settings.colors)
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
        wrapper_class=structlog.make_filtering_bound_logger(settings.level),
        logger_factory=structlog.PrintLoggerFactory(file=settings.stream),
        cache_logger_on_first_use=False,
    )


def _structlog() -> Any:
    """The structlog module, configured as :func:`configure_logging` last asked."""
    global _pending
    import structlog

    if _pending is not None:
        with _lock:
            settings, _pending = _pending, None
            # structlog configured by someone else since (a test's capture_logs, say)
            # keeps that newer configuration.
            if settings is not None and not structlog.is_configured():
                _apply(settings)
    return structlog


def configure_logging(config: LoggingConfig, *, stream: TextIO | None = None) -> None:
    """Route structlog (and stdlib logging) to ``stream`` in the configured format.

    ``stream`` defaults to standard error; ``sys.stdout`` and ``sys.stderr`` are looked up
    at each write. ``format = "auto"`` gives JSON unless the stream is a terminal, so the
    same command logs readable lines by hand and JSON under systemd.

    If structlog is not imported yet, it is configured when something first logs.
    """
    global _pending
    if stream is None or stream is sys.stderr:
        stream = _CurrentStream("stderr")
    elif stream is sys.stdout:
        stream = _CurrentStream("stdout")
    use_json = config.format == "json" or (config.format == "auto" and not stream.isatty())
    level = getattr(logging, config.level.upper())
    settings = _Settings(use_json=use_json, colors=False if use_json else stream.isatty(), level=level,
                         stream=stream)
    with _lock:
        if "structlog" in sys.modules:
            _pending = None
            _apply(settings)
        else:
            _pending = settings
    logging.basicConfig(level=level, stream=stream, format="%(levelname)s %(name)s: %(message)s", force=True)


# structlog's filtering loggers' methods and their levels; ``msg`` is ``info``.
_METHOD_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO, "warning": logging.WARNING,
    "warn": logging.WARNING, "error": logging.ERROR, "exception": logging.ERROR,
    "critical": logging.CRITICAL, "fatal": logging.CRITICAL,
}


def _dropped(*args: Any, **kwargs: Any) -> None:
    """A call below the configured level: what structlog's filtering logger does with it."""


class _LazyLogger:
    """``structlog.get_logger(name)``, imported and made on the first logging call.

    Until structlog is imported, calls below the level :func:`configure_logging` set are
    dropped here, as structlog would drop them (a ``log.debug`` under ``level = "info"``
    does not import it).
    """

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None

    def _resolve(self) -> Any:
        logger = self._logger
        if logger is None:
            # structlog's own proxy: it reads the configuration at each call.
            logger = self._logger = _structlog().get_logger(self._name)
        return logger

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._logger is None and "structlog" not in sys.modules:
            settings = _pending
            if settings is not None:
                level = _METHOD_LEVELS.get(attr)
                if level is not None and level < settings.level:
                    return _dropped
                if attr == "log":
                    return self._log
        return getattr(self._resolve(), attr)

    def _log(self, level: int, event: str, *args: Any, **kwargs: Any) -> Any:
        settings = _pending
        if "structlog" not in sys.modules and settings is not None and level < settings.level:
            return None
        return self._resolve().log(level, event, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<skinretouch logger {self._name!r}>"


def get_logger(name: str | None = None) -> Any:
    """The logger of module ``name``: a structlog logger, though structlog is imported only
    when it first logs (``info``, ``warning``, ``exception``, ``bind``, ...)."""
    return _LazyLogger(name)


def bind_contextvars(**values: Any) -> None:
    """``structlog.contextvars.bind_contextvars``: fields added to every event of this context."""
    _structlog().contextvars.bind_contextvars(**values)


def unbind_contextvars(*keys: str) -> None:
    """``structlog.contextvars.unbind_contextvars``."""
    _structlog().contextvars.unbind_contextvars(*keys)
