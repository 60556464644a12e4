"""A small stdlib client of systemd's notification protocol (``sd_notify(3)``).

Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

from ..logs import get_logger

__all__ = ["Notifier", "WatchdogPinger", "watchdog_interval_s"]

log = get_logger(__name__)

SEND_TIMEOUT_S = 1.0


class Notifier:
    """Sends ``KEY=VALUE`` lines to ``$NOTIFY_SOCKET`` (path or ``@abstract`` name)."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: str | None = None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # A receiver that does not read must not stall the daemon: drop the message.
            self._socket.settimeout(SEND_TIMEOUT_S)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram; False (and a debug log) if it could not be sent."""
        if self._socket is None or self._address is None:
            return False
        payload = "\n".join(lines).encode("utf-8")
        try:
            with self._lock:
                self._socket.sendto(payload, self._address)
        except OSError as exc:
            log.debug("sd_notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload match the reload to our READY=1.
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval_s() -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds when the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class WatchdogPinger(threading.Thread):
    """Sends ``WATCHDOG=1`` every ``interval_s`` while ``healthy()`` says so.

    ``healthy`` should be false when the daemon's main loop has stopped turning, so that
    systemd restarts a hung daemon instead of being told all is well by this thread.
    """

    def __init__(self, notifier: Notifier, interval_s: float, healthy: Callable[[], bool]) -> None:
        super().__init__(name="skinretouch-watchdog", daemon=True)
        self.notifier = notifier
        self.interval_s = interval_s
        self._healthy = healthy
        self._stop_event = threading.Event()
        self.pings = 0

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            if self._healthy():
                if self.notifier.watchdog():
                    self.pings += 1
            else:
                log.error("watchdog_withheld", reason="main loop not responding")

    def stop(self) -> None:
        self._stop_event.set()
