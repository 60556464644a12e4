"""The daemon's figures for ``make bench``: sustained photos/s and close → report latency.

:func:`measure_throughput` runs the real daemon process (``python -m skinretouch.daemon``)
on a private hot folder, so the figures include everything a user waits for: the
filesystem event, queueing, the worker, and the atomic writes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from skinretouch.sidecars import output_paths

__all__ = ["measure_throughput"]

POLL_S = 0.01


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"median": None, "p95": None, "n": 0}
    return {
        "median": round(float(np.median(values)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "n": len(values),
    }


def _drop(photo: Path, target: Path) -> float:
    """Copy ``photo`` into the hot folder the way exporters do (``*.part`` then rename)."""
    part = target.with_name(target.name + ".part")
    shutil.copyfile(photo, part)
    os.rename(part, target)
    return time.time()


def _wait_for_reports(reports: list[Path], daemon: subprocess.Popen, timeout_s: float) -> list[float]:
    """Each report's appearance time (its ctime: the file stage dates the mtime back to when
    the photo was read), waiting for all of them."""
    deadline = time.monotonic() + timeout_s
    appeared: dict[Path, float] = {}
    while len(appeared) < len(reports):
        for report in reports:
            if report not in appeared:
                try:
                    appeared[report] = report.stat().st_ctime
                except FileNotFoundError:
                    pass
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(reports) - len(appeared)} reports missing after {timeout_s} s")
        time.sleep(POLL_S)
    return [appeared[r] for r in reports]


def measure_throughput(
    photos: list[Path],
    tmpdir: Path,
    *,
    workers: int = 1,
    paced: int = 3,
    timeout_s: float = 1800.0,
    retoucher_factory: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the daemon on ``photos`` and measure it.

    Parameters
    ----------
    photos : list of Path
        The photos to drop (copied, never modified).
    tmpdir : Path
        An empty scratch folder (hot folder, state, logs).
    workers : int
        ``daemon.workers`` for the run.
    paced : int
        Photos dropped one at a time afterwards (each after the previous report), for the
        latency of a photo that does not wait behind others.
    timeout_s : float
        Give up after this long.
    retoucher_factory : str, optional
        ``"module:attribute"`` instead of the real pipeline (the daemon's own tests).
    env : dict, optional
        Extra environment for the daemon process.

    Returns
    -------
    dict
        ``photos``, ``workers``, ``burst_s`` (first drop → last report), ``photos_per_s``
        (sustained over the burst), ``burst_latency_s`` and ``latency_s`` (median, p95, n;
        close → report, in seconds, queueing included for the burst), ``failed``,
        ``startup_s`` (until the daemon is ready: pipeline loaded and warmed).
    """
    tmpdir = Path(tmpdir)
    hot, state = tmpdir / "hot", tmpdir / "state"
    (hot / "burst").mkdir(parents=True)
    (hot / "paced").mkdir()
    config = tmpdir / "config.toml"
    config.write_text(
        f'[daemon]\nworkers = {int(workers)}\nstate_dir = "{state}"\nsettle_s = 0.5\n'
        f'queue_size = {max(16, len(photos))}\n\n[logging]\nformat = "json"\nlevel = "info"\n'
    )
    log_path = tmpdir / "daemon.log"
    process_env = {**os.environ, **(env or {})}
    process_env.setdefault("NUMBA_CACHE_DIR", str(tmpdir / "numba"))
    # -P: PYTHONPATH (``env``), not the current folder, says which skinretouch runs.
    command = [sys.executable, "-P", "-m", "skinretouch.daemon", str(hot), "--config", str(config)]
    if retoucher_factory:
        command += ["--retoucher-factory", retoucher_factory]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=process_env)
    try:
        _wait_ready(state, daemon, timeout_s)
        startup_s = time.monotonic() - started

        targets = [hot / "burst" / f"{i:04d}_{p.name}" for i, p in enumerate(photos)]
        closed = [_drop(photo, target) for photo, target in zip(photos, targets)]
        reports = [output_paths(t).report for t in targets]
        appeared = _wait_for_reports(reports, daemon, timeout_s)
        burst_s = max(appeared) - min(closed)
        burst_latency = [a - c for a, c in zip(appeared, closed)]

        latency = []
        for i in range(paced):
            photo = photos[i % len(photos)]
            target = hot / "paced" / f"{i:04d}_{photo.name}"
            closed_at = _drop(photo, target)
            report = output_paths(target).report
            (appeared_at,) = _wait_for_reports([report], daemon, timeout_s)
            latency.append(appeared_at - closed_at)
            reports.append(report)
        failed = sum(json.loads(r.read_text()).get("status") != "ok" for r in reports)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    return {
        "photos": len(photos),
        "workers": workers,
        "startup_s": round(startup_s, 3),
        "burst_s": round(burst_s, 3),
        "photos_per_s": round(len(photos) / burst_s, 4) if burst_s > 0 else None,
        "burst_latency_s": _percentiles(burst_latency),
        "latency_s": _percentiles(latency),
        "failed": failed,
        "exit_code": daemon.returncode,
    }


def _wait_ready(state: Path, daemon: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = json.loads((state / "status.json").read_text())
        except (OSError, ValueError):
            status = {}
        if status.get("pid") == daemon.pid and status.get("state") == "running":
            return
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} before it was ready")
        time.sleep(0.05)
    raise TimeoutError(f"the daemon was not ready after {timeout_s} s")
