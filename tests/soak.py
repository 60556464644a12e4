"""The hot-folder soak (issue 15): hostile writers, a filling disk and kill -9s, then an audit.

Several writer threads drop photos into a hot folder at once: plain, slow (in chunks),
renamed into place from a hidden temporary, duplicated under a new name, in sub-folders;
and hostile files: empty, truncated and non-image files, FIFOs, symlinks to elsewhere and
to ``/dev/zero``. Meanwhile a chaos thread kill -9s the daemon (restarting it) and its
worker processes, swaps a sub-folder for a symlink to a folder outside, and fills the
hot folder's small disk for a moment, then frees it. The daemon runs as the real process
on the fake pipeline (``daemon_fake``), which writes slowly and logs each completion.

The audit: every good photo has an ``ok`` report for its exact bytes and was completed
at most once (a kill between a report's rename and the log line loses the line, never
the report, so "exactly once" is "one ok report, at most one completion"); every
hostile file has a ``failed`` report or, for FIFOs and links, was refused; nothing
outside the hot folder changed; no original changed; no temporary or partial file is
left; and the daemon stops cleanly with nothing running or queued.

``python tests/soak.py --photos 500`` (``make soak``) prints the figures as JSON; the
test suite runs a short version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_helpers import Daemon, photo_bytes, pid_alive, read_log, report_of  # noqa: E402


@dataclass
class SoakPlan:
    photos: int = 500  # files dropped in all, good and hostile
    writers: int = 4
    daemon_kills: int = 10
    worker_kills: int = 10
    workers: int = 2
    fake_delay_s: float = 0.06
    fill_disk: bool = True  # needs a tmpfs mount (root); skipped with a note otherwise
    disk_kib: int = 65536
    seed: int = 0
    timeout_s: float = 600.0


@dataclass
class Dropped:
    good: dict[str, bytes] = field(default_factory=dict)  # unique file name -> bytes
    good_paths: dict[str, Path] = field(default_factory=dict)  # name -> where it was dropped
    bad: dict[Path, bytes] = field(default_factory=dict)
    refused: list[Path] = field(default_factory=list)  # FIFOs and links
    write_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # writer 0 drops its first photos into w0/swapme, then sets this: the folder may be swapped
    swapme_written: threading.Event = field(default_factory=threading.Event)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def _retrying(write, drop: Dropped) -> None:
    """Run ``write`` until it succeeds: a writer hit by a full disk tries again, as copy tools do."""
    for _ in range(400):
        try:
            write()
            return
        except OSError:
            with drop.lock:
                drop.write_retries += 1
            time.sleep(0.05)
    raise RuntimeError("a writer could not write for 20 s")


def _put_direct(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _put_slowly(path: Path, data: bytes, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as handle:
            for part in range(4):
                handle.write(data[part * len(data) // 4 : (part + 1) * len(data) // 4])
                handle.flush()
                time.sleep(rng.uniform(0.02, 0.12))
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _put_renamed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    try:
        temporary.write_bytes(data)
        os.rename(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _writer(index: int, count: int, hot: Path, elsewhere: Path, drop: Dropped, seed: int) -> None:
    rng = random.Random(seed * 1000 + index)
    folder = hot / f"w{index}"
    swapme_count = min(8, count // 4) if index == 0 else 0
    for i in range(count):
        name = f"w{index}_{i:04d}"
        roll = rng.random()
        if index == 1 and i < 4:  # every hostile kind at least once, even in a short soak
            roll = (0.01, 0.05, 0.08, 0.10)[i]
        sub = folder / "swapme" if i < swapme_count else folder / ("nested" if rng.random() < 0.3 else "")
        if index == 0 and i == swapme_count:
            drop.swapme_written.set()
        if roll < 0.04:  # a FIFO with a photo's name
            path = sub / f"{name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)
            with drop.lock:
                drop.refused.append(path)
        elif roll < 0.07:  # a link to a photo outside, or to an endless device
            path = sub / f"{name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/dev/zero" if rng.random() < 0.5 else elsewhere / "outside.jpg", path)
            with drop.lock:
                drop.refused.append(path)
        elif roll < 0.12:  # corrupt: empty, truncated, or no image at all
            data = rng.choice([b"", photo_bytes(seed + 10_000 + i)[:300], b"not a photo\n" * 30])
            path = sub / f"{name}.jpg"
            _retrying(lambda: _put_direct(path, data), drop)
            with drop.lock:
                drop.bad[path] = data
        else:
            with drop.lock:
                earlier = list(drop.good.values())
            if roll < 0.17 and earlier:  # the same bytes as an earlier photo, under a new name
                data = rng.choice(earlier)
            else:
                data = photo_bytes(seed * 100_000 + index * 10_000 + i, size=32)
            path = sub / f"{name}.jpg"
            how = rng.random()
            if how < 0.2:
                _retrying(lambda: _put_slowly(path, data, rng), drop)
            elif how < 0.5:
                _retrying(lambda: _put_renamed(path, data), drop)
            else:
                _retrying(lambda: _put_direct(path, data), drop)
            with drop.lock:
                drop.good[path.name] = data
                drop.good_paths[path.name] = path
        time.sleep(rng.uniform(0.0, 0.02))


class Chaos:
    """Starts, kills and restarts the daemon; kills workers; swaps a folder; fills the disk."""

    def __init__(self, tmp: Path, hot: Path, plan: SoakPlan, config: dict) -> None:
        self.tmp, self.hot, self.plan, self.config = tmp, hot, plan, config
        self.rng = random.Random(plan.seed)
        self.daemon = self._start()
        self.daemon_kills = self.worker_kills = 0
        self.disk_filled = False
        self.swapped = False

    def _start(self) -> Daemon:
        daemon = Daemon(self.tmp, [self.hot], config=self.config, fake_delay_s=self.plan.fake_delay_s)
        daemon.wait_ready(120)
        return daemon

    def kill_daemon(self) -> None:
        log = read_log(self.daemon.fake_log)
        self.daemon.kill()
        workers = {e["pid"] for e in log if e["event"] == "loaded"}
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.daemon_kills += 1
        self.daemon = self._start()

    def kill_worker(self) -> bool:
        """kill -9 a worker busy on a photo that no kill has interrupted before."""
        log = read_log(self.daemon.fake_log)
        finished = Counter(e["path"] for e in log if e["event"] in ("done", "deferred"))
        started = Counter(e["path"] for e in log if e["event"] == "started")
        busy = {}
        for event in log:
            if event["event"] == "started":
                busy[event["pid"]] = event["path"]
        for pid, path in busy.items():
            # Busy now, and its first try: a second crash on one photo fails it by design.
            if started[path] == 1 and finished[path] == 0 and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                self.worker_kills += 1
                return True
        return False

    def swap_folder(self, elsewhere: Path, ready: threading.Event) -> None:
        ready.wait(60)
        sub = self.hot / "w0" / "swapme"
        if sub.is_dir():
            os.rename(sub, self.hot / "w0" / "swapped")
            os.symlink(elsewhere, sub)
            self.swapped = True

    def fill_disk(self, hold_s: float) -> None:
        if not self.plan.fill_disk:
            return
        filler = self.hot / ".filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while True:
                try:
                    os.write(fd, b"\0" * 65536)
                except OSError:
                    break
            self.disk_filled = True
            time.sleep(hold_s)
        finally:
            os.close(fd)
            filler.unlink()


def run_soak(tmp: Path, plan: SoakPlan) -> dict:
    """Run one soak in ``tmp``; returns the figures and the list of violations."""
    started = time.monotonic()
    hot, elsewhere = tmp / "hot", tmp / "elsewhere"
    elsewhere.mkdir(parents=True)
    (elsewhere / "outside.jpg").write_bytes(photo_bytes(424242))
    (elsewhere / "swapme_bait.jpg").write_bytes(photo_bytes(434343))
    outside_before = _snapshot(elsewhere)
    mounted = False
    hot.mkdir()
    if plan.fill_disk:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={plan.disk_kib}k", "tmpfs", str(hot)],
                              capture_output=True, text=True)
        mounted = done.returncode == 0
        if not mounted:
            plan.fill_disk = False
    try:
        return _soak(tmp, hot, elsewhere, outside_before, plan, started, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(hot)], check=False)


def _soak(tmp, hot, elsewhere, outside_before, plan, started, mounted) -> dict:
    config = {"daemon": {"workers": plan.workers, "settle_s": 0.3, "queue_size": 64, "grace_s": 10.0}}
    chaos = Chaos(tmp, hot, plan, config)
    drop = Dropped()
    per_writer = [plan.photos // plan.writers + (i < plan.photos % plan.writers) for i in range(plan.writers)]
    writers = [
        threading.Thread(target=_writer, args=(i, n, hot, elsewhere, drop, plan.seed), name=f"writer-{i}")
        for i, n in enumerate(per_writer)
    ]
    for thread in writers:
        thread.start()

    # The chaos schedule: kills spread over the drop, one swap, one full disk.
    events = ["daemon"] * plan.daemon_kills + ["worker"] * plan.worker_kills
    chaos.rng.shuffle(events)
    # The disk fills while the writers are still busy, and the folder is swapped early.
    events.insert(len(events) // 5, "fill")
    events.insert(len(events) // 3, "swap")
    drop_time = max(2.0, plan.photos * 0.02)
    for event in events:
        time.sleep(chaos.rng.uniform(0.3, 2 * drop_time / len(events)))
        if event == "daemon":
            chaos.kill_daemon()
        elif event == "worker":
            # A photo of its own arrives, so that there is work in progress to interrupt.
            name = f"chaos_{chaos.worker_kills:03d}_{len(drop.good)}.jpg"
            data = photo_bytes(plan.seed * 7 + 900_000 + len(drop.good), size=32)
            _retrying(lambda: _put_direct(hot / name, data), drop)
            with drop.lock:
                drop.good[name], drop.good_paths[name] = data, hot / name
            for _ in range(1000):
                if chaos.kill_worker():
                    break
                time.sleep(0.01)
        elif event == "swap":
            chaos.swap_folder(elsewhere, drop.swapme_written)
        else:
            chaos.fill_disk(hold_s=1.5)
    for thread in writers:
        thread.join()

    def final_path(name: str) -> Path:
        path = drop.good_paths[name]
        swapme = hot / "w0" / "swapme"
        if chaos.swapped and path.is_relative_to(swapme):
            return hot / "w0" / "swapped" / path.relative_to(swapme)
        return path

    def settled() -> bool:
        for name, data in drop.good.items():
            report = report_of(final_path(name))
            if not report or report["status"] != "ok" or report["input"]["sha256"] != _sha(data):
                return False
        status = chaos.daemon.status() or {}
        return status.get("queued") == 0 and not status.get("running")

    chaos.daemon.wait_for(settled, plan.timeout_s, "every good photo done")
    time.sleep(1.0)  # a late duplicate would show up now
    stop_code = chaos.daemon.stop(60)

    violations: list[str] = []
    log = read_log(chaos.daemon.fake_log)
    ok_done = Counter(Path(e["path"]).name for e in log if e["event"] == "done" and e["status"] == "ok")
    for name, data in drop.good.items():
        path = final_path(name)
        report = report_of(path)
        if not report or report["status"] != "ok":
            violations.append(f"{path}: no ok report")
        if ok_done[name] > 1:
            violations.append(f"{path}: completed {ok_done[name]} times")
        if path.read_bytes() != data:
            violations.append(f"{path}: original changed")
    for path, data in drop.bad.items():
        where = final_path_of_bad(path, hot, chaos.swapped)
        report = report_of(where)
        if not report or report["status"] != "failed":
            violations.append(f"{where}: corrupt file without a failed report")
        if where.read_bytes() != data:
            violations.append(f"{where}: original changed")
    refused_reports = 0
    for path in drop.refused:
        where = final_path_of_bad(path, hot, chaos.swapped)
        report = report_of(where)
        if report is not None:
            refused_reports += report["status"] == "failed"
            if report["status"] != "failed":
                violations.append(f"{where}: a FIFO or link was processed")
    if _snapshot(elsewhere) != outside_before:
        violations.append("a file outside the hot folder was written or changed")
    read_outside = [e["path"] for e in log if e["event"] == "done" and e["path"].startswith(str(elsewhere))]
    if read_outside:
        violations.append(f"read outside the hot folder: {read_outside[:3]}")
    leftovers = [str(p) for p in hot.rglob("*") if p.name.endswith((".tmp", ".part")) or p.name == ".filler"]
    if leftovers:
        violations.append(f"temporary or partial files left: {leftovers[:5]}")
    if stop_code != 0:
        violations.append(f"the daemon exited {stop_code} on SIGTERM")
    deferred = sum(e.get("event") == "photo_deferred" for f in tmp.glob("daemon-*.log") for e in Daemon.events_of(f))
    return {
        "photos_dropped": len(drop.good) + len(drop.bad) + len(drop.refused),
        "good_photos": len(drop.good),
        "good_photos_ok_once": sum(1 for n in drop.good if ok_done[n] == 1),
        "good_photos_ok_report_but_completion_line_lost_to_a_kill": sum(1 for n in drop.good if ok_done[n] == 0),
        "corrupt_files": len(drop.bad),
        "fifos_and_links": len(drop.refused),
        "fifos_and_links_with_failed_report": refused_reports,
        "writers": plan.writers,
        "daemon_kills": chaos.daemon_kills,
        "worker_kills": chaos.worker_kills,
        "subfolder_swapped": chaos.swapped,
        "disk_filled_and_freed": chaos.disk_filled,
        "writer_retries_on_full_disk": drop.write_retries,
        "photos_deferred_by_daemon": deferred,
        "seconds": round(time.monotonic() - started, 1),
        "violations": violations,
    }


def final_path_of_bad(path: Path, hot: Path, swapped: bool) -> Path:
    swapme = hot / "w0" / "swapme"
    if swapped and path.is_relative_to(swapme):
        return hot / "w0" / "swapped" / path.relative_to(swapme)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--daemon-kills", type=int, default=10)
    parser.add_argument("--worker-kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-disk-fill", action="store_true")
    args = parser.parse_args(argv)
    plan = SoakPlan(photos=args.photos, writers=args.writers, daemon_kills=args.daemon_kills,
                    worker_kills=args.worker_kills, seed=args.seed, fill_disk=not args.no_disk_fill)
    tmp = Path(tempfile.mkdtemp(prefix="skinretouch-soak-"))
    try:
        figures = run_soak(tmp, plan)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    return 1 if figures["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
