"""SIGTERM, SIGHUP, systemd notifications, ``status``, worker crashes: on the real daemon process."""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from pathlib import Path

from daemon_helpers import Daemon, done_counts, photo_bytes, read_log, report_of, temp_files, write_config

from skinretouch.config import config_sha256, load_config
from skinretouch.daemon.status import main_status


def test_sigterm_while_busy_finishes_the_current_photo_and_exits_0(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    hot.mkdir()
    config = {"daemon": {"workers": 1, "settle_s": 0.2, "grace_s": 20.0}}
    with Daemon(tmp_path, [hot], config=config, fake_delay_s=1.5) as daemon:
        daemon.wait_ready()
        photos = [hot / f"p{i}.jpg" for i in range(3)]
        for i, photo in enumerate(photos):
            photo.write_bytes(photo_bytes(i))
        log_path = tmp_path / "fake.log"
        daemon.wait_for(lambda: any(e["event"] == "started" for e in read_log(log_path)), 20, "a photo started")
        terminated_at = time.time()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(25) == 0  # within grace_s (20 s) plus start-up slack
        events = daemon.events()
    log = read_log(log_path)
    done_before = {e["path"] for e in log if e["event"] == "done" and e["t"] < terminated_at}
    busy = {e["path"] for e in log if e["event"] == "started" and e["t"] < terminated_at} - done_before
    assert len(busy) == 1
    started = {e["path"] for e in log if e["event"] == "started"}
    assert started == busy | done_before  # nothing new was started after SIGTERM
    for photo in photos:
        if str(photo) in started:
            assert report_of(photo)["status"] == "ok"  # the busy one was finished, not abandoned
        else:
            assert report_of(photo) is None  # left for the next run
    assert len(started) < len(photos)
    assert temp_files(hot) == []
    assert [e["event"] for e in events][-1] == "stopped"
    assert not any(e["event"] == "photo_abandoned" for e in events)

    with Daemon(tmp_path, [hot], config=config, fake_delay_s=0.01, once=True) as again:
        assert again.wait(60) == 0
    assert all(report_of(p)["status"] == "ok" for p in photos)
    assert sorted(done_counts(read_log(tmp_path / "fake.log")).values()) == [1, 1, 1]


def test_sigterm_past_the_grace_time_abandons_cleanly(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    hot.mkdir()
    config = {"daemon": {"workers": 1, "settle_s": 0.2, "grace_s": 1.0}}
    with Daemon(tmp_path, [hot], config=config, fake_delay_s=60.0) as daemon:
        daemon.wait_ready()
        photo = hot / "slowpoke.jpg"
        photo.write_bytes(photo_bytes(1))
        daemon.wait_for(lambda: list(hot.glob(".slowpoke.retouched.jpg.*.tmp")), 20, "a half-written output")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        events = daemon.events()
    abandoned = [e for e in events if e["event"] == "photo_abandoned"]
    assert len(abandoned) == 1 and abandoned[0]["path"] == str(photo) and abandoned[0]["temps_removed"] >= 1
    assert temp_files(hot) == []
    assert report_of(photo) is None and not (hot / "slowpoke.retouched.jpg").exists()
    assert photo.read_bytes() == photo_bytes(1)


class NotifyListener(threading.Thread):
    """A stand-in for systemd: collects sd_notify datagrams on an abstract socket."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.name_ = f"@skinretouch-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name_[1:])
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def lines(self) -> list[str]:
        return [line for message in list(self.messages) for line in message.splitlines()]

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.sock.close()


def test_sighup_reload_notify_status_and_single_instance(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    hot.mkdir()
    listener = NotifyListener()
    listener.start()
    base = {"daemon": {"workers": 1, "settle_s": 0.2, "include": ["*.jpg"]}}
    env = {"NOTIFY_SOCKET": listener.name_, "WATCHDOG_USEC": "400000"}
    try:
        with Daemon(tmp_path, [hot], config=base, extra_env=env) as daemon:
            daemon.wait_ready()
            config_a = load_config(daemon.config_path)
            (hot / "first.jpg").write_bytes(photo_bytes(1))
            (hot / "picture.png").write_bytes(photo_bytes(2, fmt="PNG"))
            daemon.wait_for(lambda: report_of(hot / "first.jpg"), 20, "first.jpg")
            time.sleep(0.8)  # well past settle_s: the PNG is not wanted under config A
            assert report_of(hot / "picture.png") is None

            # A second daemon on the same state folder is refused.
            (tmp_path / "other").mkdir()
            with Daemon(tmp_path / "other", [hot], config={"daemon": {"state_dir": str(daemon.state_dir)}}) as second:
                assert second.wait(30) == 2
                assert "another skinretouch watch" in second.output()

            # Valid new config: PNGs wanted, and a pipeline setting changed.
            write_config(daemon.config_path, {
                "daemon": {**base["daemon"], "include": ["*.jpg", "*.png"], "state_dir": str(daemon.state_dir)},
                "mask": {"dilation_px": 5},
                "logging": {"format": "json"},
            })
            config_b = load_config(daemon.config_path)
            daemon.signal(signal.SIGHUP)
            daemon.wait_event("config_reloaded")
            daemon.wait_for(lambda: report_of(hot / "picture.png"), 20, "the PNG after reload")
            assert report_of(hot / "picture.png")["settings"]["config_sha256"] != \
                report_of(hot / "first.jpg")["settings"]["config_sha256"]

            # Invalid new config: keep the old one, say why.
            write_config(daemon.config_path, {"daemon": {"bogus_key": 1}})
            daemon.signal(signal.SIGHUP)
            daemon.wait_event("reload_failed_keeping_old_config")
            failure = [e for e in daemon.events() if e["event"] == "reload_failed_keeping_old_config"][0]
            assert "daemon.bogus_key" in failure["error"]
            (hot / "second.png").write_bytes(photo_bytes(3, fmt="PNG"))
            daemon.wait_for(lambda: report_of(hot / "second.png"), 20, "a PNG under the kept config")
            assert report_of(hot / "second.png")["settings"]["config_sha256"] == config_sha256(config_b)
            assert config_sha256(config_a) != config_sha256(config_b)

            # skinretouch status, while running (the file is rewritten within half a second).
            daemon.wait_for(lambda: (daemon.status() or {}).get("done") == 3 and not daemon.status()["running"],
                            10, "status to catch up")
            out = io.StringIO()
            assert main_status(config_b, stream=out) == 0
            text = out.getvalue()
            assert f"running, pid {daemon.process.pid}" in text and "done:     3" in text

            assert daemon.stop() == 0
        out = io.StringIO()
        assert main_status(config_b, stream=out) == 1
        assert "not running" in out.getvalue()
    finally:
        listener.close()
    lines = listener.lines()
    assert "READY=1" in lines
    assert lines.count("RELOADING=1") == 2
    assert lines.count("READY=1") == 3  # start, and after each reload
    assert lines.count("WATCHDOG=1") >= 3
    assert any(line.startswith("STATUS=running: ") for line in lines)
    assert "STOPPING=1" in lines
    after_stopping = lines[lines.index("STOPPING=1") + 1 :]
    assert all(line.startswith(("WATCHDOG=", "STATUS=")) for line in after_stopping), after_stopping


def test_a_crashing_photo_gets_a_failed_report_and_the_daemon_goes_on(tmp_path: Path) -> None:
    hot, failed = tmp_path / "hot", tmp_path / "failed"
    hot.mkdir()
    config = {"daemon": {"workers": 1, "settle_s": 0.2, "failed_dir": str(failed)}}
    with Daemon(tmp_path, [hot], config=config) as daemon:
        daemon.wait_ready()
        (hot / "crash.jpg").write_bytes(photo_bytes(1))
        daemon.wait_for(lambda: (failed / "crash.jpg.retouch.json").exists(), 30, "the crash report")
        (hot / "after.jpg").write_bytes(photo_bytes(2))
        (hot / "sub").mkdir()
        (hot / "sub" / "broken.jpg").write_bytes(b"garbage")
        daemon.wait_for(lambda: report_of(hot / "after.jpg"), 30, "the next photo")
        daemon.wait_for(lambda: (failed / "sub" / "broken.jpg").exists(), 30, "the broken photo moved")
        assert daemon.stop() == 0
    report = report_of(failed / "crash.jpg")
    assert report["status"] == "failed" and "worker process died" in report["error"] and "SIGSEGV" in report["error"]
    assert (failed / "crash.jpg").read_bytes() == photo_bytes(1)  # moved, unchanged
    assert report_of(failed / "sub" / "broken.jpg")["status"] == "failed"
    assert not (hot / "crash.jpg").exists() and not (hot / "sub" / "broken.jpg").exists()
    assert report_of(hot / "after.jpg")["status"] == "ok"
    assert temp_files(hot) == []
