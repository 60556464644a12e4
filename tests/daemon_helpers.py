"""Running the real daemon process in tests (``python -m skinretouch.daemon``) on a fake pipeline."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

TESTS_DIR = Path(__file__).resolve().parent
FAKE_FACTORY = "daemon_fake:FakeRetoucher"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def write_config(path: Path, sections: dict[str, dict]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def photo_bytes(seed: int, *, fmt: str = "JPEG", size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def done_counts(log: list[dict]) -> Counter:
    return Counter(entry["path"] for entry in log if entry["event"] == "done")


def temp_files(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        found += [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".part")]
    return found


def report_of(photo: Path) -> dict | None:
    report = photo.with_name(photo.name + ".retouch.json")
    return json.loads(report.read_text()) if report.exists() else None


class Daemon:
    """One ``python -m skinretouch.daemon`` process with its own state folder and log."""

    def __init__(self, tmp: Path, folders: list[Path], *, config: dict[str, dict] | None = None,
                 fake_delay_s: float = 0.01, once: bool = False, factory: str | None = FAKE_FACTORY,
                 extra_env: dict[str, str] | None = None, program: list[str] | None = None) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.fake_log = tmp / "fake.log"
        self.stdout_path = tmp / f"daemon-{time.monotonic_ns()}.log"
        sections = {k: dict(v) for k, v in (config or {}).items()}
        sections.setdefault("daemon", {}).setdefault("state_dir", str(self.state_dir))
        sections.setdefault("logging", {}).setdefault("format", "json")
        self.config_path = write_config(tmp / "config.toml", sections)
        program = program or [sys.executable, "-m", "skinretouch.daemon"]
        args = [*program, *map(str, folders), "--config", str(self.config_path)]
        if once:
            args.append("--once")
        if factory:
            args += ["--retoucher-factory", factory]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["FAKE_LOG"] = str(self.fake_log)
        env["FAKE_DELAY_S"] = str(fake_delay_s)
        env.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")
        env.pop("NOTIFY_SOCKET", None)
        env.pop("WATCHDOG_USEC", None)
        env.update(extra_env or {})
        self._stdout = open(self.stdout_path, "wb")
        self.process = subprocess.Popen(args, stdout=self._stdout, stderr=subprocess.STDOUT, env=env)

    # -- observation -----------------------------------------------------------------
    def status(self) -> dict | None:
        try:
            return json.loads((self.state_dir / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def events(self) -> list[dict]:
        return self.events_of(self.stdout_path)

    @staticmethod
    def events_of(path: Path) -> list[dict]:
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
        return events

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status and status.get("pid") == self.process.pid and status.get("state") == "running":
                return
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"daemon not ready after {timeout} s:\n{self.output()}")

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode} waiting for {what}:\n"
                                     f"{self.output()[-5000:]}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-5000:]}")

    def wait_event(self, name: str, timeout: float = 30.0, count: int = 1) -> None:
        self.wait_for(lambda: sum(e.get("event") == name for e in self.events()) >= count, timeout, name)

    # -- control ---------------------------------------------------------------------
    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._stdout.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._stdout.close()

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._stdout.close()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._stdout.close()


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie, dead but not reaped by its new parent, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
