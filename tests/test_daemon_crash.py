"""kill -9 the real daemon process again and again while it works: nothing lost, nothing doubled.

The fake pipeline writes its outputs slowly and logs a line only once a photo's report is
in place, so kills land mid-photo and the log counts completions.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from daemon_helpers import Daemon, done_counts, photo_bytes, pid_alive, read_log, report_of, sha256, temp_files

KILLS = 20


def test_kill_9_at_random_moments_then_everything_completed_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(6)
    hot = tmp_path / "hot"
    (hot / "nested").mkdir(parents=True)
    photos = [hot / ("nested" if i % 3 == 0 else "") / f"p{i:03d}.jpg" for i in range(36)]
    bad = [hot / f"bad{i}.jpg" for i in range(3)]
    for i, photo in enumerate(photos):
        photo.write_bytes(photo_bytes(i))
    for path in bad:
        path.write_bytes(b"not a photo")
    config = {"daemon": {"workers": 2, "settle_s": 0.3}}
    log_path = tmp_path / "fake.log"

    next_photo = len(photos)
    kills_mid_photo = 0
    for round_number in range(KILLS):
        # New photos keep arriving between (and during) the crashes.
        for _ in range(2):
            photo = hot / f"p{next_photo:03d}.jpg"
            photo.write_bytes(photo_bytes(next_photo))
            photos.append(photo)
            next_photo += 1
        launched = time.time()
        daemon = Daemon(tmp_path, [hot], config=config, fake_delay_s=0.12)
        with daemon:
            kind = round_number % 3
            if kind == 0:
                time.sleep(rng.uniform(0.2, 2.0))  # at start-up, during the catch-up, or later
            elif kind == 1:
                daemon.wait_ready()
                time.sleep(rng.uniform(0.0, 0.4))
            else:  # while a photo is being written
                daemon.wait_for(lambda: any(e["event"] == "started" and e["t"] > launched
                                            for e in read_log(log_path)), 30, "a photo in progress")
                time.sleep(rng.uniform(0.0, 0.1))
            in_flight = {e["path"] for e in read_log(log_path) if e["event"] == "started" and e["t"] > launched}
            daemon.kill()
        log = read_log(log_path)
        done_now = {e["path"] for e in log if e["event"] == "done" and e["t"] > launched}
        kills_mid_photo += bool(in_flight - done_now)
        # The worker processes die with the daemon (no orphan finishes a photo behind a restart).
        workers = [e["pid"] for e in log if e["event"] == "loaded" and e["t"] > launched]
        deadline = time.monotonic() + 5
        while any(pid_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(pid_alive(pid) for pid in workers), f"round {round_number}: orphaned workers"

    before_final = done_counts(read_log(log_path))
    unreported_bad = [p for p in bad if report_of(p) is None]
    hashes = {p: sha256(p) for p in [*photos, *bad]}
    with Daemon(tmp_path, [hot], config=config, fake_delay_s=0.01, once=True) as final:
        assert final.wait(120) == (1 if unreported_bad else 0), final.output()[-3000:]
        starts = [e for e in final.events() if e.get("event") == "starting"]

    log = read_log(log_path)
    done = done_counts(log)
    for photo in photos:
        report = report_of(photo)
        assert report is not None and report["status"] == "ok", photo
        assert report["input"]["sha256"] == hashes[photo]
        assert done[str(photo)] <= 1, f"{photo} completed {done[str(photo)]} times"
    for path in bad:
        assert report_of(path)["status"] == "failed"
        assert done[str(path)] <= 1
    # A kill between a report's rename and the log line loses the line, never the report:
    # at most one such photo per worker per kill.
    unlogged = [p for p in [*photos, *bad] if done[str(p)] == 0]
    assert len(unlogged) <= 2 * KILLS
    assert sum(before_final.values()) > 0, "the killed daemons completed nothing"
    assert kills_mid_photo >= 3, "too few kills landed while a photo was being processed"
    restarted_work = sum(e["event"] == "started" for e in log) - sum(done.values())
    assert restarted_work >= kills_mid_photo  # interrupted photos were done again, from scratch
    assert temp_files(hot) == []
    assert all(sha256(p) == digest for p, digest in hashes.items())
    assert starts and all(isinstance(s.get("stale_temps_removed"), int) for s in starts)
    removed_total = sum(
        e.get("stale_temps_removed", 0)
        for f in tmp_path.glob("daemon-*.log")
        for e in Daemon.events_of(f)
        if e.get("event") == "starting"
    )
    assert removed_total > 0, "no kill ever left a temporary file to clean up"
