"""End to end: the real ``skinretouch watch`` process on the real pipeline (small photos)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import Daemon, report_of, sha256, temp_files
from PIL import Image


def _skin_photo(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    skin = np.array([0.85, 0.66, 0.55]) + 0.03 * rng.standard_normal((256, 256, 3))
    for _ in range(4):  # a few reddish spots
        y, x = rng.integers(40, 216, size=2)
        yy, xx = np.ogrid[:256, :256]
        spot = (yy - y) ** 2 + (xx - x) ** 2 < 16
        skin[spot] = skin[spot] * np.array([0.95, 0.7, 0.7])
    Image.fromarray((np.clip(skin, 0, 1) * 255).astype(np.uint8)).save(path, quality=95)


def _watch_command() -> list[str]:
    installed = Path(sys.executable).with_name("skinretouch")
    if installed.exists():
        return [str(installed), "watch"]
    found = shutil.which("skinretouch")
    if found is None:
        pytest.skip("the skinretouch command is not installed")
    return [found, "watch"]


def test_skinretouch_watch_on_the_real_pipeline(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    (hot / "sub").mkdir(parents=True)
    config = {"daemon": {"workers": 1, "settle_s": 0.3}}
    with Daemon(tmp_path, [hot], config=config, factory=None, program=_watch_command()) as daemon:
        daemon.wait_ready(timeout=120)  # first start may compile the numba kernels
        photos = [hot / "a.jpg", hot / "sub" / "b.jpg", hot / "c.png"]
        for seed, photo in enumerate(photos):
            staging = tmp_path / f"staging{photo.suffix}"
            _skin_photo(staging, seed)
            shutil.copy(staging, photo.with_name(photo.name + ".part"))
            os.rename(photo.with_name(photo.name + ".part"), photo)  # renamed into place
        (hot / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
        hashes = {p: sha256(p) for p in [*photos, hot / "broken.jpg"]}
        daemon.wait_for(lambda: all(report_of(p) for p in [*photos, hot / "broken.jpg"]), 120, "reports")
        for photo in photos:
            report = report_of(photo)
            assert report["status"] == "ok", report
            assert report["input"]["sha256"] == hashes[photo]
            assert Path(report["outputs"]["image"]).exists() and Path(report["outputs"]["mask"]).exists()
        broken = report_of(hot / "broken.jpg")
        assert broken["status"] == "failed" and broken["error"]

        # Identical bytes written again: a new close event, and the pipeline's sha256 skip.
        photos[0].write_bytes(photos[0].read_bytes())
        daemon.wait_for(
            lambda: any(e.get("event") == "photo" and e["status"] == "skipped" and e["path"] == str(photos[0])
                        for e in daemon.events()),
            60, "an idempotent skip",
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
        events = [e for e in daemon.events() if e.get("event") == "photo"]
    ok = [e for e in events if e["status"] == "ok"]
    assert sorted(e["path"] for e in ok) == sorted(map(str, photos))  # each exactly once
    assert all({"decode", "detect", "encode", "total"} <= set(e["timings_ms"]) for e in ok)
    assert all(sha256(p) == digest for p, digest in hashes.items())
    assert temp_files(hot) == []

    # A restart catches up on nothing: every photo already has its report.
    started = time.time()
    with Daemon(tmp_path, [hot], config=config, factory=None, program=_watch_command(), once=True) as again:
        assert again.wait(120) == 0
        assert not [e for e in again.events() if e.get("event") == "photo"]
    assert all(Path(str(p) + ".retouch.json").stat().st_mtime < started for p in photos)
