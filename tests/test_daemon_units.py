"""The daemon's pieces in isolation: queue, path rules, settle tracker, sd_notify, temp clean-up."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from skinretouch.config import DaemonConfig
from skinretouch.daemon.paths import HotFolders, is_our_temp_name, resolve_state_dir
from skinretouch.daemon.queue import STOP, Job, JobQueue, Offer
from skinretouch.daemon.scan import iter_photos, looks_done, remove_stale_temps
from skinretouch.daemon.sdnotify import Notifier, WatchdogPinger, watchdog_interval_s
from skinretouch.daemon.status import InstanceLock
from skinretouch.daemon.watcher import SettleTracker


def _job(name: str, **kwargs) -> Job:
    return Job(path=Path("/hot") / name, root=Path("/hot"), **kwargs)


# -- JobQueue ------------------------------------------------------------------------
def test_queue_drops_duplicates_and_refuses_past_capacity() -> None:
    queue = JobQueue(2)
    assert queue.offer(_job("a.jpg", source="event")) is Offer.ACCEPTED
    assert queue.offer(_job("a.jpg", source="scan", seen_at=1.0)) is Offer.DUPLICATE
    assert queue.offer(_job("b.jpg")) is Offer.ACCEPTED
    assert queue.offer(_job("c.jpg")) is Offer.FULL
    assert queue.pending_count() == 2
    first = queue.get(0)
    assert first.path.name == "a.jpg" and first.source == "event"
    assert queue.offer(_job("c.jpg")) is Offer.ACCEPTED


def test_queue_reruns_a_job_that_arrives_while_it_runs_but_never_concurrently() -> None:
    queue = JobQueue(4)
    queue.offer(_job("a.jpg"))
    running = queue.get(0)
    assert queue.offer(_job("a.jpg")) is Offer.ACCEPTED  # remembered, not handed out
    assert queue.offer(_job("a.jpg")) is Offer.DUPLICATE
    assert queue.get(0) is None  # nobody else may take a.jpg while it runs
    queue.task_done(running)
    again = queue.get(0)
    assert again.path.name == "a.jpg"
    queue.task_done(again)
    assert queue.is_idle()


def test_queue_put_blocks_until_there_is_room_and_close_returns_stop() -> None:
    queue = JobQueue(1)
    stop = threading.Event()
    queue.offer(_job("a.jpg"))
    result: list[Offer] = []
    producer = threading.Thread(target=lambda: result.append(queue.put(_job("b.jpg"), stop=stop)))
    producer.start()
    producer.join(0.3)
    assert producer.is_alive() and not result  # back-pressure: the producer waits
    queue.task_done(queue.get(0))
    producer.join(5)
    assert result == [Offer.ACCEPTED]
    blocked = threading.Thread(target=lambda: result.append(queue.put(_job("c.jpg"), stop=stop)))
    blocked.start()
    stop.set()
    blocked.join(5)
    assert result[-1] is Offer.CLOSED
    queue.close()
    assert queue.get(0) is STOP and queue.offer(_job("d.jpg")) is Offer.CLOSED


def test_jobs_are_frozen_and_equal_by_path_and_destination() -> None:
    a, b = _job("a.jpg", source="event", seen_at=1.0), _job("a.jpg", source="scan", seen_at=2.0)
    assert a == b and hash(a) == hash(b)
    assert a != _job("a.jpg", out_dir=Path("/out"))
    with pytest.raises(AttributeError):
        a.path = Path("/x")  # type: ignore[misc]


# -- path rules ----------------------------------------------------------------------
@pytest.fixture
def folders(tmp_path: Path) -> HotFolders:
    config = DaemonConfig(output_dir=str(tmp_path / "hot" / "out"), failed_dir=str(tmp_path / "failed"),
                          exclude=("*_proof.*", "drafts/*"))
    (tmp_path / "hot").mkdir()
    return HotFolders.from_config([tmp_path / "hot"], config, state_dir=tmp_path / "state")


@pytest.mark.parametrize(
    ("relative", "taken"),
    [
        ("IMG_1.JPG", True),
        ("sub/deeper/photo.jpeg", True),
        ("scan.tif", True),
        ("image.png", True),
        ("notes.txt", False),
        (".hidden.jpg", False),
        ("a.jpg.part", False),
        ("a.jpg.tmp", False),
        ("a.jpg~", False),
        (".thumbs/a.jpg", False),
        ("a.retouched.jpg", False),
        ("a.jpg.mask.png", False),
        ("a.jpg.retouch.json", False),
        ("out/a.jpg", False),  # the output folder inside the hot folder
        ("client_proof.jpg", False),
        ("drafts/a.jpg", False),
    ],
)
def test_which_files_are_photos(folders: HotFolders, relative: str, taken: bool) -> None:
    root = folders.roots[0]
    assert (folders.accepts(root / relative) == root) is taken


def test_not_recursive_takes_only_top_level(tmp_path: Path) -> None:
    (tmp_path / "hot").mkdir()
    folders = HotFolders.from_config([tmp_path / "hot"], DaemonConfig(recursive=False), state_dir=None)
    assert folders.accepts(tmp_path / "hot" / "a.jpg")
    assert not folders.accepts(tmp_path / "hot" / "sub" / "a.jpg")
    assert not folders.accepts(tmp_path / "elsewhere.jpg")


def test_outputs_mirror_sub_folders_into_the_output_folder(folders: HotFolders) -> None:
    root = folders.roots[0]
    assert folders.out_dir_for(root / "a" / "b.jpg", root) == folders.output_dir / "a"
    assert folders.report_path(root / "a" / "b.jpg", root) == folders.output_dir / "a" / "b.jpg.retouch.json"


def test_our_temp_names() -> None:
    assert is_our_temp_name(".IMG_1.retouched.jpg.1a2b3c4d.tmp")
    assert is_our_temp_name(".IMG_1.JPG.retouch.json.deadbeef.tmp")
    assert is_our_temp_name(".IMG_1.JPG.mask.png.00000000.tmp")
    assert not is_our_temp_name(".IMG_1.jpg.1a2b3c4d.tmp")  # someone else's temporary
    assert not is_our_temp_name("IMG_1.retouched.jpg")
    assert not is_our_temp_name(".bashrc")


def test_remove_stale_temps_and_scan(tmp_path: Path, folders: HotFolders) -> None:
    root = folders.roots[0]
    (root / "sub").mkdir()
    ours = [root / ".a.retouched.jpg.11111111.tmp", root / "sub" / ".b.jpg.retouch.json.22222222.tmp"]
    theirs = [root / ".download.jpg.33333333.tmp", root / "x.tmp"]
    for path in [*ours, *theirs]:
        path.write_bytes(b"x")
    (root / "sub" / "b.jpg").write_bytes(b"photo")
    (root / "a.jpg").write_bytes(b"photo")
    assert sorted(remove_stale_temps(folders)) == sorted(ours)
    assert all(p.exists() for p in theirs)
    found = sorted(p.name for p, _, _ in iter_photos(folders, root))
    assert found == ["a.jpg", "b.jpg"]


def test_looks_done_compares_report_time_with_the_photo_change_time(folders: HotFolders) -> None:
    root = folders.roots[0]
    photo = root / "a.jpg"
    photo.write_bytes(b"photo")
    assert not looks_done(folders, photo, root, photo.stat())
    report = folders.report_path(photo, root)
    report.parent.mkdir(parents=True)
    report.write_text("{}")
    assert looks_done(folders, photo, root, photo.stat())
    past = time.time() - 3600
    os.utime(report, (past, past))  # the photo changed after its report
    assert not looks_done(folders, photo, root, photo.stat())


def test_state_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/skinretouch")
    assert resolve_state_dir(DaemonConfig()) == Path("/var/lib/skinretouch")
    assert resolve_state_dir(DaemonConfig(state_dir=str(tmp_path))) == tmp_path
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert resolve_state_dir(DaemonConfig()) == tmp_path / "xdg" / "skinretouch"


def test_instance_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path), InstanceLock(tmp_path)
    assert first.holder() is None
    assert first.acquire()
    assert not second.acquire()
    assert second.holder() == os.getpid()
    first.release()
    assert second.acquire()
    second.release()


# -- settle tracker ------------------------------------------------------------------
def test_settle_tracker_waits_for_a_growing_file_to_stop_changing(tmp_path: Path) -> None:
    taken: list[tuple[Path, float]] = []
    stop = threading.Event()
    tracker = SettleTracker(settle_s=0.3, submit=lambda p, r, t: taken.append((p, time.monotonic())) or True,
                            stop=stop)
    growing, gone = tmp_path / "growing.jpg", tmp_path / "gone.jpg"
    growing.write_bytes(b"a")
    gone.write_bytes(b"b")
    tracker.note(growing, tmp_path)
    tracker.note(gone, tmp_path)
    gone.unlink()
    last_write = time.monotonic()
    for _ in range(6):  # keeps growing for ~0.6 s, each pause shorter than settle_s
        tracker.check()
        time.sleep(0.1)
        with open(growing, "ab") as handle:
            handle.write(b"more")
        last_write = time.monotonic()
        tracker.check()
    assert taken == []
    deadline = time.monotonic() + 5
    while not taken and time.monotonic() < deadline:
        tracker.check()
        time.sleep(0.05)
    assert [p for p, _ in taken] == [growing]
    assert taken[0][1] - last_write >= 0.3
    assert len(tracker) == 0


def test_settle_tracker_keeps_a_file_the_queue_refused(tmp_path: Path) -> None:
    answers = [False, True]
    tracker = SettleTracker(settle_s=0.0, submit=lambda p, r, t: answers.pop(0), stop=threading.Event())
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    tracker.note(photo, tmp_path)
    tracker.check()
    assert len(tracker) == 1
    tracker.check()
    assert len(tracker) == 0 and answers == []


def test_settle_tracker_is_bounded(tmp_path: Path) -> None:
    tracker = SettleTracker(settle_s=1.0, submit=lambda p, r, t: True, stop=threading.Event(), max_tracked=3)
    for i in range(5):
        tracker.note(tmp_path / f"{i}.jpg", tmp_path)
    assert len(tracker) == 3 and tracker.overflowed.is_set()


# -- sd_notify -----------------------------------------------------------------------
def _listen(abstract: bool, tmp_path: Path) -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"skinretouch-unit-{os.getpid()}"
        sock.bind("\0" + name)
        address = "@" + name
    else:
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    sock.settimeout(2)
    return sock, address


@pytest.mark.parametrize("abstract", [True, False])
def test_notifier_sends_datagrams(tmp_path: Path, abstract: bool) -> None:
    sock, address = _listen(abstract, tmp_path)
    notifier = Notifier(address)
    try:
        assert notifier.ready("idle")
        assert sock.recv(1024) == b"READY=1\nSTATUS=idle"
        assert notifier.reloading()
        lines = sock.recv(1024).decode().splitlines()
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        assert notifier.stopping() and sock.recv(1024) == b"STOPPING=1"
    finally:
        notifier.close()
        sock.close()


def test_notifier_without_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled and not notifier.ready()


def test_watchdog_interval_and_pinger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval_s() is None  # meant for another process
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval_s() is None

    sock, address = _listen(True, tmp_path)
    healthy = threading.Event()
    healthy.set()
    pinger = WatchdogPinger(Notifier(address), 0.05, healthy.is_set)
    pinger.start()
    try:
        assert sock.recv(64) == b"WATCHDOG=1"
        healthy.clear()  # a hung main loop: no more pings
        time.sleep(0.1)
        count = pinger.pings
        time.sleep(0.3)
        assert pinger.pings == count
    finally:
        pinger.stop()
        pinger.join()
        sock.close()


# -- bench hook ----------------------------------------------------------------------
def test_measure_throughput_on_the_fake_pipeline(tmp_path: Path) -> None:
    from daemon_helpers import FAKE_FACTORY, TESTS_DIR, photo_bytes

    from skinretouch.benchmark.daemon_throughput import measure_throughput

    photos = []
    for i in range(6):
        photo = tmp_path / f"src{i}.jpg"
        photo.write_bytes(photo_bytes(i))
        photos.append(photo)
    (tmp_path / "run").mkdir()
    env = {"PYTHONPATH": f"{TESTS_DIR}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "FAKE_LOG": str(tmp_path / "fake.log"), "FAKE_DELAY_S": "0.05"}
    result = measure_throughput(photos, tmp_path / "run", paced=2, retoucher_factory=FAKE_FACTORY, env=env)
    assert result["photos"] == 6 and result["failed"] == 0 and result["exit_code"] == 0
    # One worker at 0.05 s a photo cannot beat 20 photos/s; the queue makes later photos wait.
    assert 0 < result["photos_per_s"] < 20
    assert result["burst_latency_s"]["n"] == 6 and result["latency_s"]["n"] == 2
    assert 0 < result["burst_latency_s"]["median"] <= result["burst_latency_s"]["p95"]
    assert result["burst_latency_s"]["p95"] >= 5 * 0.05  # the last photo waited behind five
    assert all(p.read_bytes() == photo_bytes(i) for i, p in enumerate(photos))


def test_settle_tracker_waits_while_a_writer_has_the_file_open(tmp_path: Path) -> None:
    taken: list[Path] = []
    tracker = SettleTracker(settle_s=0.0, submit=lambda p, r, t: taken.append(p) or True, stop=threading.Event())
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    tracker.note(photo, tmp_path)
    tracker.opened(photo)  # the writer
    tracker.opened(photo)  # a reader
    tracker.closed(photo)  # the reader is done; the writer still has it open
    tracker.check()
    tracker.check()
    assert taken == []
    tracker.closed(photo)
    tracker.check()
    tracker.check()
    assert taken == [photo]

    other = tmp_path / "b.jpg"
    other.write_bytes(b"x")
    tracker.note(other, tmp_path)
    tracker.touch(other, writer_open=True)  # IN_MODIFY: a writer we never saw open it
    tracker.check()
    tracker.check()
    assert taken == [photo]


# -- systemd unit --------------------------------------------------------------------
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (Path(__file__).resolve().parents[1] / "systemd" / "skinretouch.service").read_text()
    for required in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "ProtectSystem=strict",
                     "ReadWritePaths=", "NoNewPrivileges=yes", "PrivateTmp=yes", "User=skinretouch",
                     "KillMode=mixed", "NUMBA_CACHE_DIR=/var/cache/skinretouch/numba", "CacheDirectory="):
        assert required in unit, required
    # verify checks that ExecStart exists: point it at this interpreter's installation.
    executable = Path(sys.executable).with_name("skinretouch")
    if not executable.exists():
        executable = Path(sys.executable)
    local = tmp_path / "skinretouch.service"
    local.write_text(unit.replace("/opt/skinretouch/.venv/bin/skinretouch", str(executable)))
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "skinretouch.service" not in result.stderr, result.stderr


# -- watcher (inotify, in-process) ---------------------------------------------------
def test_inotify_watcher_takes_closed_and_moved_in_files_at_once(tmp_path: Path) -> None:
    from skinretouch.daemon.watcher import Watcher

    hot, outside = tmp_path / "hot", tmp_path / "outside"
    hot.mkdir()
    outside.mkdir()
    folders = HotFolders.from_config([hot], DaemonConfig(), state_dir=None)
    submitted: list[Path] = []
    stop = threading.Event()
    tracker = SettleTracker(settle_s=60.0, submit=lambda p, r, t: True, stop=stop)  # never settles here
    watcher = Watcher(folders, observer_kind="inotify", poll_interval_s=1.0,
                      submit=lambda p, r, t: submitted.append(p), tracker=tracker, scan=lambda d: None)
    with watcher:
        assert not watcher.polling and tracker.unseen_writer_factor > 1
        (outside / "moved.jpg").write_bytes(b"x")
        os.rename(outside / "moved.jpg", hot / "moved.jpg")  # moved in: complete
        with open(hot / "written.jpg", "wb") as handle:  # complete once closed
            handle.write(b"x")
            handle.flush()
            time.sleep(0.3)
            assert hot / "written.jpg" not in submitted
        (hot / "draft.jpg.part").write_bytes(b"x")
        os.rename(hot / "draft.jpg.part", hot / "draft.jpg")  # renamed into place
        (hot / "notes.txt").write_bytes(b"x")
        deadline = time.monotonic() + 5
        while len(submitted) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    stop.set()
    assert sorted(p.name for p in submitted) == ["draft.jpg", "moved.jpg", "written.jpg"]
