"""Many photos dropped at once into the real daemon process: each handled exactly once.

The daemon runs as ``python -m skinretouch.daemon`` with a fake pipeline (no pixels)
that logs every photo it completes, so "exactly once" is counted, not assumed.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from daemon_helpers import Daemon, done_counts, photo_bytes, read_log, report_of, sha256, temp_files


@dataclass
class Drop:
    """What a test dropped, and what it expects of each file."""

    good: list[Path] = field(default_factory=list)
    bad: dict[Path, str] = field(default_factory=dict)  # path -> words expected in the error
    ignored: list[Path] = field(default_factory=list)
    closed_at: dict[Path, float] = field(default_factory=dict)  # slow writers: when they closed


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def _write_slowly(path: Path, data: bytes, *, chunks: int, pause_s: float, drop: Drop) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for i in range(chunks):
            handle.write(data[i * len(data) // chunks : (i + 1) * len(data) // chunks])
            handle.flush()
            os.fsync(handle.fileno())
            if i < chunks - 1:
                time.sleep(pause_s)
    drop.closed_at[path] = time.time()


def _rename_into_place(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    _write(part, data)
    os.rename(part, path)


def drop_files(hot: Path, *, direct: int, nested: int, slow: int, renamed: int, duplicates: int,
               pngs: int, bad_each: int, slow_chunks: int, slow_pause_s: float) -> Drop:
    """Write everything at once from several threads; returns what was dropped."""
    drop = Drop()
    tasks = []
    seed = 0

    payloads: dict[Path, bytes] = {}

    def good(path: Path, writer, data: bytes | None = None) -> None:
        nonlocal seed
        seed += 1
        payload = data if data is not None else photo_bytes(seed, fmt="PNG" if path.suffix == ".png" else "JPEG")
        payloads[path] = payload
        drop.good.append(path)
        tasks.append((writer, path, payload))

    for i in range(direct):
        good(hot / f"direct_{i:03d}.jpg", _write)
    for i in range(nested):
        sub = ("a", "a/b", "a/b/c", "x/y")[i % 4]
        good(hot / sub / f"nested_{i:03d}.JPG", _write)
    for i in range(slow):
        good(hot / ("slow" if i % 2 else "") / f"slow_{i:03d}.jpg",
             lambda p, d: _write_slowly(p, d, chunks=slow_chunks, pause_s=slow_pause_s, drop=drop))
    for i in range(renamed):
        good(hot / ("" if i % 2 else "a") / f"renamed_{i:03d}.jpeg", _rename_into_place)
    for i, original in enumerate(list(drop.good[:duplicates])):
        # The same bytes as another photo under another name: a photo of its own.
        good(hot / "dup" / f"copy_{i:03d}.jpg", _write, payloads[original])
    for i in range(pngs):
        good(hot / f"image_{i:03d}.png", _write)
    for i in range(bad_each):
        drop.bad[hot / f"empty_{i:03d}.jpg"] = "empty"
        tasks.append((_write, hot / f"empty_{i:03d}.jpg", b""))
        drop.bad[hot / "a" / f"truncated_{i:03d}.jpg"] = "truncated"
        tasks.append((_write, hot / "a" / f"truncated_{i:03d}.jpg", photo_bytes(1000 + i)[:700]))
        drop.bad[hot / f"notanimage_{i:03d}.jpg"] = "not a"
        tasks.append((_write, hot / f"notanimage_{i:03d}.jpg", b"this is a text file, not a photo\n" * 20))
    for name in ("notes.txt", ".hidden.jpg", "backup.jpg~", "left.jpg.part", ".cache/inside.jpg", "x.jpg.tmp"):
        drop.ignored.append(hot / name)
        tasks.append((_write, hot / name, photo_bytes(5000)))

    with ThreadPoolExecutor(max_workers=max(8, slow)) as pool:
        for future in [pool.submit(writer, path, data) for writer, path, data in tasks]:
            future.result()
    return drop


def _sample_queue(daemon: Daemon, stop: threading.Event, seen: list[int]) -> None:
    while not stop.wait(0.02):
        status = daemon.status()
        if status:
            seen.append(status["queued"])


def _check_outcome(hot: Path, drop: Drop, daemon: Daemon, hashes: dict[Path, str]) -> None:
    log = read_log(daemon.fake_log)
    done = done_counts(log)
    for photo in drop.good:
        assert done[str(photo)] == 1, f"{photo} completed {done[str(photo)]} times"
        report = report_of(photo)
        assert report["status"] == "ok" and report["input"]["sha256"] == hashes[photo]
    for photo, words in drop.bad.items():
        assert done[str(photo)] == 1, f"{photo} handled {done[str(photo)]} times"
        report = report_of(photo)
        assert report["status"] == "failed" and words in report["error"], (photo, report)
    for path in drop.ignored:
        assert not path.with_name(path.name + ".retouch.json").exists(), f"{path} should be ignored"
    assert set(done) <= {str(p) for p in [*drop.good, *drop.bad]}, "something else was processed"
    for path, digest in hashes.items():
        assert sha256(path) == digest, f"original {path} changed"
    leftovers = [p for p in temp_files(hot) if p.name != "left.jpg.part" and p.name != "x.jpg.tmp"]
    assert leftovers == []
    # A slow writer's photo was never read before its writer closed it.
    started = {e["path"]: e["t"] for e in log if e["event"] == "started"}
    for path, closed in drop.closed_at.items():
        assert started[str(path)] >= closed - 0.05, f"{path} was taken while still being written"


def test_200_photos_dropped_at_once_each_processed_exactly_once(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    hot.mkdir()
    queue_size = 16  # far below the burst: exercises back-pressure and the overflow rescan
    config = {"daemon": {"workers": 2, "queue_size": queue_size, "settle_s": 1.0, "observer": "inotify"}}
    with Daemon(tmp_path, [hot], config=config, fake_delay_s=0.004) as daemon:
        daemon.wait_ready()
        stop_sampling, queued = threading.Event(), []
        sampler = threading.Thread(target=_sample_queue, args=(daemon, stop_sampling, queued))
        sampler.start()
        drop = drop_files(hot, direct=70, nested=40, slow=20, renamed=30, duplicates=10, pngs=12,
                          bad_each=6, slow_chunks=6, slow_pause_s=0.45)
        assert len(drop.good) + len(drop.bad) >= 200
        hashes = {p: sha256(p) for p in [*drop.good, *drop.bad, *drop.ignored]}
        everything = [*drop.good, *drop.bad]
        daemon.wait_for(lambda: all(report_of(p) for p in everything), 120, "a report for every photo")

        # Writing identical bytes over processed photos: new close events, no new work.
        rewritten = drop.good[:5]
        for photo in rewritten:
            photo.write_bytes(photo.read_bytes())
        daemon.wait_for(
            lambda: sum(e["event"] == "skipped" for e in read_log(daemon.fake_log)) >= len(rewritten),
            30, "idempotent skips",
        )
        time.sleep(1.5)  # longer than settle_s: any late duplicate would show up now
        stop_sampling.set()
        sampler.join()
        assert daemon.stop() == 0
        _check_outcome(hot, drop, daemon, hashes)
        assert max(queued) <= queue_size + 2, f"queue grew to {max(queued)}"
        events = [e["event"] for e in daemon.events()]
        assert events.count("photo") >= len(everything)
        assert "stopped" in events


def test_polling_observer_takes_settled_files_only(tmp_path: Path) -> None:
    """The network-share fallback: no close events, only size/mtime stability."""
    hot = tmp_path / "hot"
    hot.mkdir()
    config = {"daemon": {"workers": 1, "observer": "polling", "poll_interval_s": 0.1, "settle_s": 0.8}}
    with Daemon(tmp_path, [hot], config=config, fake_delay_s=0.004) as daemon:
        daemon.wait_ready()
        assert any(e.get("observer") == "polling" for e in daemon.events() if e.get("event") == "watching")
        drop = drop_files(hot, direct=8, nested=6, slow=4, renamed=4, duplicates=2, pngs=2,
                          bad_each=1, slow_chunks=5, slow_pause_s=0.5)
        hashes = {p: sha256(p) for p in [*drop.good, *drop.bad, *drop.ignored]}
        everything = [*drop.good, *drop.bad]
        daemon.wait_for(lambda: all(report_of(p) for p in everything), 60, "a report for every photo")
        time.sleep(1.2)
        assert daemon.stop() == 0
        _check_outcome(hot, drop, daemon, hashes)


@pytest.mark.parametrize("observer", ["inotify", "polling"])
def test_catch_up_scan_on_start_and_once(tmp_path: Path, observer: str) -> None:
    """Photos dropped while no daemon ran are processed by ``--once``, then skipped next time."""
    hot = tmp_path / "hot"
    for i in range(6):
        (hot / "sub").mkdir(parents=True, exist_ok=True)
        (hot / ("sub" if i % 2 else "") / f"p{i}.jpg").write_bytes(photo_bytes(i))
    (hot / "broken.jpg").write_bytes(b"")
    past = time.time() - 60  # dropped a minute ago: settled
    for path in hot.rglob("*.jpg"):
        os.utime(path, (past, past))
    config = {"daemon": {"observer": observer, "settle_s": 0.5}}
    with Daemon(tmp_path, [hot], config=config, once=True) as daemon:
        assert daemon.wait(60) == 1  # one photo failed
    done = done_counts(read_log(tmp_path / "fake.log"))
    assert sorted(done.values()) == [1] * 7
    with Daemon(tmp_path, [hot], config=config, once=True) as daemon:
        assert daemon.wait(60) == 0  # nothing left to do: nothing failed this time
    assert done_counts(read_log(tmp_path / "fake.log")) == done


def test_a_writer_pausing_longer_than_settle_time_is_waited_for(tmp_path: Path) -> None:
    """inotify: a writer pausing three times settle_s is waited for.

    For a file whose opening was seen, however long the pause; for one created in a new
    folder before the folder's watch existed (nobody seen opening it), up to
    ``UNSEEN_WRITER_FACTOR * settle_s`` (here 1.5 s).
    """
    hot = tmp_path / "hot"
    hot.mkdir()
    config = {"daemon": {"workers": 1, "observer": "inotify", "settle_s": 0.3}}
    with Daemon(tmp_path, [hot], config=config) as daemon:
        daemon.wait_ready()
        drop = Drop()
        photos = [hot / "stalled.jpg", hot / "new" / "stalled_in_new_folder.jpg"]
        writers = [
            threading.Thread(target=_write_slowly, args=(p, photo_bytes(i)),
                             kwargs={"chunks": 3, "pause_s": 0.9, "drop": drop})
            for i, p in enumerate(photos)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        daemon.wait_for(lambda: all(report_of(p) for p in photos), 30, "both reports")
        time.sleep(0.6)
        assert daemon.stop() == 0
    log = read_log(daemon.fake_log)
    assert done_counts(log) == {str(p): 1 for p in photos}
    assert all(report_of(p)["status"] == "ok" for p in photos)
    started = {e["path"]: e["t"] for e in log if e["event"] == "started"}
    for path, closed in drop.closed_at.items():
        assert started[str(path)] >= closed - 0.05, f"{path} was taken while its writer paused"
