"""``make bench-cluster``: photos/s through 1 and 2 Celery worker processes, side by side,
and the daemon's (producer's) cost per photo enqueued.

Everything is real: a private ``redis-server`` on a free loopback port, ``skinretouch
worker`` processes running the real pipeline, and the real daemon
(``python -m skinretouch.daemon``) enqueueing a burst of blemished sample portraits from
its hot folder. Throughput is measured from the first drop to the last report; runs with
1 and 2 workers alternate (``--rounds``) so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..sidecars import output_paths

__all__ = ["main", "measure_cluster", "measure_producer"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--appendonly", "yes",
         "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url).ping():
                return process, url
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _write_config(path: Path, broker: str, state: Path | None = None) -> Path:
    lines = ["[cluster]", 'backend = "celery"', f'broker = "{broker}"', "", "[logging]", 'format = "json"']
    if state is not None:
        lines += ["", "[daemon]", f'state_dir = "{state}"', "settle_s = 0.2", "queue_size = 4096"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait(predicate, timeout_s: float, what: str, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f"a process exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_cluster(sample: Path, count: int, workers: int, folder: Path, broker: str) -> dict[str, Any]:
    """Drop ``count`` copies of ``sample`` into a daemon's hot folder served by ``workers`` workers."""
    hot, state = folder / "hot", folder / "state"
    hot.mkdir(parents=True)
    config = _write_config(folder / "config.toml", broker, state)
    env = {**os.environ}
    logs = [open(folder / f"worker-{i}.log", "wb") for i in range(workers)]
    started = [subprocess.Popen([sys.executable, "-m", "skinretouch", "worker", "--config", str(config),
                                 "--name", f"bench{i}@%h"], stdout=log, stderr=subprocess.STDOUT, env=env)
               for i, log in enumerate(logs)]
    daemon_log = open(folder / "daemon.log", "wb")
    processes = list(started)
    try:
        def pools_ready() -> bool:
            return all(b"worker_process_ready" in (folder / f"worker-{i}.log").read_bytes() for i in range(workers))

        _wait(pools_ready, 600, "the workers' pipelines", processes)
        daemon = subprocess.Popen([sys.executable, "-m", "skinretouch.daemon", str(hot), "--config", str(config)],
                                  stdout=daemon_log, stderr=subprocess.STDOUT, env=env)
        processes.append(daemon)

        def daemon_ready() -> bool:
            try:
                return json.loads((state / "status.json").read_text()).get("state") == "running"
            except (OSError, ValueError):
                return False

        _wait(daemon_ready, 120, "the daemon", processes)
        first_drop = time.time()
        targets = []
        for i in range(count):
            target = hot / f"{i:04d}_{sample.name}"
            part = target.with_name(target.name + ".part")
            shutil.copyfile(sample, part)
            os.rename(part, target)
            targets.append(target)
        reports = [output_paths(t).report for t in targets]
        _wait(lambda: all(r.exists() for r in reports), 3600, f"{count} reports", processes)
        last = max(r.stat().st_mtime for r in reports)
        bodies = [json.loads(r.read_text()) for r in reports]
        failed = sum(body.get("status") != "ok" for body in bodies)
        photo_ms = sorted(body["timings_ms"]["total"] for body in bodies if body.get("timings_ms", {}).get("total"))
        seconds = last - first_drop
        return {"workers": workers, "photos": count, "seconds": round(seconds, 3),
                "photos_per_s": round(count / seconds, 4), "failed": failed,
                "worker_ms_per_photo_median": photo_ms[len(photo_ms) // 2] if photo_ms else None}
    finally:
        for process in reversed(processes):
            _stop(process)
        for log in [*logs, daemon_log]:
            log.close()


def measure_producer(sample: Path, count: int, broker: str, folder: Path) -> dict[str, Any]:
    """The daemon's own cost per photo enqueued (sha256 of the file + publishing the task),
    measured in-process on the real dispatcher, with no worker consuming its queue."""
    from ..config import parse_config
    from ..daemon.queue import Job, JobQueue
    from .dispatch import CeleryDispatcher

    queue_name = f"bench-producer-{os.getpid()}"
    config = parse_config({"cluster": {"backend": "celery", "broker": broker, "queue": queue_name}})
    jobs = JobQueue(count + 1)
    hot = folder / "producer"
    hot.mkdir(parents=True)
    for i in range(count):
        target = hot / f"{i:04d}_{sample.name}"
        shutil.copyfile(sample, target)
        jobs.offer(Job(path=target, root=hot))
    abandon = threading.Event()
    dispatcher = CeleryDispatcher(jobs, config=config, state_dir=folder / "state", on_outcome=lambda *a: None,
                                  on_ready=lambda d: None, on_fatal=lambda d, r: abandon.set(), abandon=abandon)
    dispatcher.start()
    deadline = time.monotonic() + 120
    while len(dispatcher.producer_s) < count and time.monotonic() < deadline and not abandon.is_set():
        time.sleep(0.01)
    jobs.close()
    dispatcher.join(10)
    costs = sorted(dispatcher.producer_s)
    dispatcher.redis.delete(queue_name)
    if not costs:
        raise RuntimeError("nothing was enqueued")
    return {"photos": len(costs), "photo_bytes": sample.stat().st_size,
            "median_ms": round(1000 * costs[len(costs) // 2], 3),
            "p95_ms": round(1000 * costs[min(len(costs) - 1, int(0.95 * len(costs)))], 3)}


def _sized_sample(sample: Path, long_side: int) -> Path:
    """``sample`` scaled (cubic) so its long side is ``long_side`` pixels, as a JPEG beside it."""
    from PIL import Image

    with Image.open(sample) as image:
        scale = long_side / max(image.size)
        resized = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    target = sample.with_name(f"{sample.stem}_{long_side}.jpg")
    resized.save(target, format="JPEG", quality=95, subsampling=0)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skinretouch.cluster.bench", description=__doc__)
    parser.add_argument("--photos", type=int, default=16, help="photos per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of 1 and 2 workers, alternating")
    parser.add_argument("--size", type=int, default=2048, help="the sample's long side in pixels")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)

    from ..config import LoggingConfig
    from ..demo import make_sample
    from ..logs import configure_logging

    configure_logging(LoggingConfig(format="console", level="warning"))

    scratch = Path(tempfile.mkdtemp(prefix="skinretouch-bench-cluster-"))
    redis_dir = scratch / "redis"
    redis_dir.mkdir()
    redis_process, broker = _start_redis(redis_dir)
    try:
        sample = _sized_sample(make_sample(scratch / "sample"), args.size)
        producer = measure_producer(sample, 200, broker, scratch)
        runs = []
        for round_index in range(args.rounds):
            for workers in (1, 2):
                run = measure_cluster(sample, args.photos, workers, scratch / f"r{round_index}-w{workers}", broker)
                print(json.dumps(run), flush=True)
                runs.append(run)
    finally:
        _stop(redis_process)
        shutil.rmtree(scratch, ignore_errors=True)

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    def rate(workers: int) -> float:
        return median([r["photos_per_s"] for r in runs if r["workers"] == workers])

    ratios = [two["photos_per_s"] / one["photos_per_s"] for one, two in zip(runs[::2], runs[1::2])]
    result = {
        "machine_cores": os.cpu_count(),
        "sample": f"make_sample() portrait (Grace Hopper with planted blemishes), long side {args.size} px",
        "runs": runs,
        "photos_per_s_1_worker": rate(1),
        "photos_per_s_2_workers": rate(2),
        "ratio_2_to_1_per_round": [round(r, 3) for r in ratios],
        "ratio_2_to_1_median": round(median(ratios), 3),
        "worker_ms_per_photo_median_1_worker": median([r["worker_ms_per_photo_median"] for r in runs
                                                        if r["workers"] == 1]),
        "producer": producer,
        "producer_share_of_one_photo": round(producer["median_ms"] / 1000 * rate(1), 5),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
