"""A real Redis server and real ``skinretouch worker`` processes for the cluster tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from daemon_helpers import TESTS_DIR, write_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """``redis-server`` on a free loopback port, persisting (append-only file) into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
             "--protected-mode", "yes"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()[-2000:]}")

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # redis flushes its append-only file and exits
            self.process.wait(20)
        self.process = None
        self.log.close()


class Worker:
    """One ``skinretouch worker`` process (Celery main process + its pool processes)."""

    def __init__(self, tmp: Path, name: str, *, sections: dict[str, dict], queues: str | None = None,
                 fake_delay_s: float = 0.01, fake_log: Path | None = None, concurrency: int = 1,
                 factory: str = "daemon_fake:FakeRetoucher") -> None:
        self.name = name
        self.config_path = write_config(tmp / f"worker-{name}.toml", sections)
        self.stdout_path = tmp / f"worker-{name}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["FAKE_LOG"] = str(fake_log or tmp / "fake.log")
        env["FAKE_DELAY_S"] = str(fake_delay_s)
        env.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")
        args = [sys.executable, "-m", "skinretouch", "worker", "--config", str(self.config_path),
                "--name", f"{name}@test", "--concurrency", str(concurrency),
                "--retoucher-factory", factory]
        if queues:
            args += ["--queues", queues]
        self._stdout = open(self.stdout_path, "wb")
        self.process = subprocess.Popen(args, stdout=self._stdout, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._stdout.close()


def cluster_sections(redis: RedisServer, **cluster) -> dict[str, dict]:
    """Config sections of a test cluster: fast retries and a short visibility timeout."""
    values = {"backend": "celery", "broker": redis.url, "time_limit_s": 20.0, "visibility_timeout_s": 30.0,
              "max_retries": 1, "retry_backoff_s": 0.2}
    values.update(cluster)
    return {"cluster": values, "logging": {"format": "json", "level": "info"}}
