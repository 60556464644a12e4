"""Hostile and unlucky hot folders against the real daemon process (issue 15).

FIFOs, links to devices, link loops, a sub-folder swapped for a symlink while busy, the
hot folder removed and recreated, bad folders in the config, two daemons on one hot
folder. The daemon runs as ``python -m skinretouch.daemon`` on the fake pipeline, which
reads photos through the same reader as the real one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from daemon_helpers import TESTS_DIR, Daemon, done_counts, photo_bytes, read_log, report_of, write_config


def _drop(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_bytes(seed))
    return path


def _failed_with(photo: Path, words: str):
    report = report_of(photo)
    return report is not None and report["status"] == "failed" and words in (report["error"] or "")


def test_fifos_devices_and_link_loops_fail_alone_and_never_block_the_worker(tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    with Daemon(tmp_path, [hot], config={"daemon": {"settle_s": 0.3}}) as daemon:
        daemon.wait_ready()
        os.mkfifo(hot / "pipe.jpg")  # nobody ever writes to it
        os.symlink("/dev/zero", hot / "zero.jpg")  # endless
        os.symlink("loop.jpg", hot / "loop.jpg")
        good = _drop(hot / "after.jpg", 1)
        daemon.wait_for(lambda: done_counts(read_log(daemon.fake_log))[str(good)] == 1, 30, "the good photo")
        daemon.wait_for(lambda: _failed_with(hot / "pipe.jpg", "FIFO"), 30, "the FIFO refused")
        daemon.wait_for(lambda: _failed_with(hot / "zero.jpg", "symbolic link"), 30, "the /dev/zero link refused")
        daemon.wait_for(lambda: _failed_with(hot / "loop.jpg", "symbolic link"), 30, "the loop refused")
        daemon.wait_for(lambda: not (daemon.status() or {}).get("running"), 10, "no photo still running")
        assert daemon.stop() == 0
    for line in daemon.output().splitlines():
        json.loads(line)  # every log line stays valid JSON


def test_a_subfolder_swapped_for_a_symlink_while_busy_leads_nowhere_outside(tmp_path):
    hot, elsewhere = tmp_path / "hot", tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = _drop(elsewhere / "p.jpg", 7)
    before = sorted(p.name for p in elsewhere.iterdir())
    with Daemon(tmp_path, [hot], fake_delay_s=1.2, config={"daemon": {"settle_s": 0.3}}) as daemon:
        _drop(hot / "sub" / "first.jpg", 1)
        daemon.wait_ready()
        daemon.wait_for(lambda: (daemon.status() or {}).get("running"), 20, "busy with the first photo")
        inside = _drop(hot / "sub" / "p.jpg", 2)  # queued behind the busy worker
        time.sleep(0.3)
        os.rename(hot / "sub", hot / "sub_orig")
        os.symlink(elsewhere, hot / "sub")
        moved = hot / "sub_orig" / "p.jpg"
        daemon.wait_for(lambda: done_counts(read_log(daemon.fake_log))[str(moved)] == 1, 30, "p.jpg where it is now")
        daemon.wait_for(lambda: (daemon.status() or {}).get("queued") == 0 and not daemon.status()["running"],
                        15, "the queue drained")
        assert daemon.stop() == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == before, "wrote outside the hot folder"
    assert str(outside) not in read_log(daemon.fake_log).__repr__(), "read outside the hot folder"
    refused = [e for e in daemon.events() if e.get("event") == "photo" and e.get("path") == str(inside)]
    assert refused and all(e["status"] == "failed" and "symbolic link" in e["error"] for e in refused), refused


def test_a_removed_and_recreated_hot_folder_is_noticed_shown_and_reattached(tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    with Daemon(tmp_path, [hot], config={"daemon": {"settle_s": 0.3}}) as daemon:
        daemon.wait_ready()
        subprocess.run(["rm", "-rf", str(hot)], check=True)
        daemon.wait_event("hot_folder_missing", 10)
        daemon.wait_for(lambda: str(hot) in ((daemon.status() or {}).get("folder_problems") or {}), 10,
                        "status naming the missing folder")
        shown = subprocess.run(
            [sys.executable, "-m", "skinretouch", "status", "--config", str(daemon.config_path)],
            capture_output=True, text=True, timeout=60,
        ).stdout
        assert "missing" in shown and str(hot) in shown
        hot.mkdir()
        daemon.wait_event("hot_folder_reattached", 10)
        photo = _drop(hot / "back.jpg", 3)
        daemon.wait_for(lambda: done_counts(read_log(daemon.fake_log))[str(photo)] == 1, 30, "a photo after re-attach")
        assert not (daemon.status() or {}).get("folder_problems")

        # A reload naming a regular file as failed_dir is refused; the old config stays.
        blocker = tmp_path / "not_a_folder"
        blocker.write_text("x")
        write_config(daemon.config_path, {
            "daemon": {"state_dir": str(daemon.state_dir), "settle_s": 0.3, "failed_dir": str(blocker)},
            "logging": {"format": "json"},
        })
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("reload_failed_keeping_old_config", 10)
        failed = [e for e in daemon.events() if e["event"] == "reload_failed_keeping_old_config"]
        assert "daemon.failed_dir" in failed[-1]["error"]
        assert daemon.stop() == 0


def _start_error(tmp_path: Path, hot: Path, daemon_section: dict, extra: dict | None = None) -> tuple[int, str]:
    config = write_config(tmp_path / "bad.toml", {"daemon": daemon_section, **(extra or {})})
    env = dict(os.environ, PYTHONPATH=str(TESTS_DIR))
    done = subprocess.run(
        [sys.executable, "-m", "skinretouch.daemon", str(hot), "--config", str(config),
         "--retoucher-factory", "daemon_fake:FakeRetoucher"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    return done.returncode, done.stdout + done.stderr


def test_bad_folders_and_numbers_in_the_config_stop_the_start_naming_the_key(tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    state = str(tmp_path / "state")
    for key in ("output_dir", "failed_dir"):
        code, text = _start_error(tmp_path, hot, {"state_dir": state, key: str(blocker)})
        assert code == 2 and f"daemon.{key}" in text, text
    code, text = _start_error(tmp_path, hot, {"state_dir": str(blocker)})
    assert code == 2 and "daemon.state_dir" in text, text
    (tmp_path / "nan.toml").write_text(f'[daemon]\nstate_dir = "{state}"\nsettle_s = nan\n')
    done = subprocess.run([sys.executable, "-m", "skinretouch.daemon", str(hot), "--config",
                           str(tmp_path / "nan.toml")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "daemon.settle_s" in done.stderr and "finite" in done.stderr


def test_two_daemons_with_different_state_folders_do_not_share_a_hot_folder(tmp_path):
    hot = tmp_path / "hot"
    hot.mkdir()
    first_tmp = tmp_path / "one"
    first_tmp.mkdir()
    with Daemon(first_tmp, [hot]) as first:
        first.wait_ready()
        code, text = _start_error(tmp_path, hot, {"state_dir": str(tmp_path / "state2")})
        assert code == 2 and "another skinretouch watch" in text and str(hot) in text, text
        photo = _drop(hot / "once.jpg", 5)
        first.wait_for(lambda: done_counts(read_log(first.fake_log))[str(photo)] == 1, 30, "the photo")
        assert first.stop() == 0


def test_a_full_disk_defers_photos_across_a_restart_until_there_is_room(tmp_path):
    from small_disk import fill, small_disk

    with small_disk(tmp_path / "hot", 1024) as hot:
        photo = _drop(hot / "big.jpg", 11)
        filler = fill(hot)
        config = {"daemon": {"settle_s": 0.2}}
        with Daemon(tmp_path, [hot], config=config) as daemon:
            daemon.wait_ready()
            daemon.wait_event("photo_deferred", 20)
            assert daemon.stop() == 0
        deferred = [e for e in daemon.events() if e["event"] == "photo_deferred"]
        assert "No space left on device" in deferred[0]["error"] and ".tmp" not in deferred[0]["error"]
        assert report_of(photo) is None  # never recorded as a final failure
        with Daemon(tmp_path, [hot], config=config) as again:  # after a restart, still full
            again.wait_ready()
            again.wait_event("photo_deferred", 20)
            assert (again.status() or {}).get("waiting_to_retry") == 1
            filler.unlink()
            again.wait_for(lambda: (report_of(photo) or {}).get("status") == "ok", 30, "the retry after space was freed")
            assert again.stop() == 0
        assert done_counts(read_log(again.fake_log))[str(photo)] == 1
        assert sorted(p.name for p in hot.iterdir()) == sorted(
            ["big.jpg", "big.retouched.jpg", "big.jpg.mask.png", "big.jpg.retouch.json"])
