"""The cluster mode against a real Redis server and real Celery worker processes.

Redis is Debian's ``redis-server`` on a free loopback port with its append-only file on
(``make test`` installs it); the workers are ``skinretouch worker`` processes running the
daemon tests' fake pipeline (:mod:`daemon_fake`), which writes the same files as the real
one, slowly enough for a kill to land mid-photo, and logs each completed photo.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import time
from collections import Counter
from contextlib import ExitStack, redirect_stdout
from pathlib import Path

import pytest

from daemon_helpers import Daemon, photo_bytes, read_log, temp_files
from skinretouch.cluster.paths import PathMap
from skinretouch.config import Config, config_sha256, parse_config, pipeline_config

pytest.importorskip("celery", reason="the cluster extra is not installed")
if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
    pytest.skip("redis-server is not installed (make test installs it)", allow_module_level=True)

from cluster_helpers import RedisServer, Worker, cluster_sections  # noqa: E402


# -- single functions ----------------------------------------------------------------
def test_path_map_takes_the_longest_matching_prefix():
    paths = PathMap.parse(("/srv/photos=/mnt/photos", "/srv/photos/vip = /mnt/fast/vip"))
    assert paths.to_local("/srv/photos/a/b.jpg") == "/mnt/photos/a/b.jpg"
    assert paths.to_local("/srv/photos/vip/c.jpg") == "/mnt/fast/vip/c.jpg"
    assert paths.to_local("/srv/photosX/d.jpg") == "/srv/photosX/d.jpg"  # a prefix of names, not of paths
    assert paths.to_local("/elsewhere/e.jpg") == "/elsewhere/e.jpg"
    assert '"/srv/photos=/mnt/photos"' in paths.describe()


def test_machines_with_different_cluster_settings_share_the_pipeline_hash():
    daemon_side = parse_config({"cluster": {"backend": "celery", "path_map": ["/srv/p=/srv/p"]},
                                "daemon": {"workers": 3}})
    worker_side = parse_config({"cluster": {"backend": "celery", "path_map": ["/srv/p=/mnt/p"]},
                                "logging": {"format": "json"}})
    assert config_sha256(pipeline_config(daemon_side)) == config_sha256(pipeline_config(worker_side))
    assert config_sha256(pipeline_config(daemon_side.replace("mask", dilation_px=5))) != config_sha256(
        pipeline_config(daemon_side))
    assert Config().cluster.backend == "local"


def test_hard_cases_go_to_gpu_workers_only_when_one_is_up_and_the_engine_fell_back():
    from types import SimpleNamespace

    from skinretouch.cluster.routing import HardCaseRouter, NeedsGpu

    def region(route, hard):
        return SimpleNamespace(route=route, hard_case=hard)

    class Inner:
        config = Config()

        def __init__(self, regions):
            self.regions = regions

        def retouch(self, image, *, mask=None, orientation=1):
            return SimpleNamespace(regions=self.regions)

    fell_back = [region("freqsplit", False), region("patchmatch", True)]
    with pytest.raises(NeedsGpu) as caught:
        HardCaseRouter(Inner(fell_back), lambda: True).retouch(None)
    assert caught.value.regions == [fell_back[1]]
    # No GPU worker up: done here, classically (the report records the fallback).
    assert HardCaseRouter(Inner(fell_back), lambda: False).retouch(None).regions == fell_back
    # The hard case got its neural engine, or there is no hard case: nothing to hand on.
    for regions in ([region("lama", True)], [region("freqsplit", False)]):
        assert HardCaseRouter(Inner(regions), lambda: True).retouch(None).regions == regions
    assert HardCaseRouter(Inner([]), lambda: True).config is Inner.config


def test_worker_command_on_a_base_install_names_the_extra(monkeypatch, capsys):
    import sys

    from skinretouch.cli import main

    monkeypatch.setitem(sys.modules, "celery", None)  # as if the extra were not installed
    assert main(["worker"]) == 2
    assert "pip install 'skinretouch[cluster]'" in capsys.readouterr().err


# -- real Redis, real workers --------------------------------------------------------
@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server):
    if not redis_server.ping():
        redis_server.start()
    redis_server.client().flushall()
    return redis_server


def _drop(hot: Path, count: int, *, prefix: str = "p") -> list[Path]:
    photos = []
    for i in range(count):
        photo = hot / f"{prefix}{i:03d}.jpg"
        part = photo.with_name(photo.name + ".part")
        part.write_bytes(photo_bytes(i, size=24))
        os.rename(part, photo)
        photos.append(photo)
    return photos


def _report(photo: Path) -> dict | None:
    try:
        return json.loads(photo.with_name(photo.name + ".retouch.json").read_text())
    except (OSError, ValueError):
        return None


def _wait_reports(daemon: Daemon, photos: list[Path], timeout: float, *, workers: list[Worker] = ()) -> None:
    def finished() -> bool:
        return all((r := _report(p)) is not None and r.get("status") in ("ok", "failed") and
                   ("runner" in r or r["status"] == "failed") for p in photos)
    try:
        daemon.wait_for(finished, timeout, f"{len(photos)} reports")
    except AssertionError:
        for worker in workers:
            print(f"---- worker {worker.name}\n{worker.output()[-4000:]}")
        raise


def _assert_one_complete_set_each(photos: list[Path], hot: Path) -> None:
    for photo in photos:
        report = _report(photo)
        assert report is not None and report["status"] == "ok", (photo, report)
        siblings = sorted(p.name for p in hot.iterdir() if p.name.startswith(photo.stem + "."))
        assert siblings == sorted([photo.name, f"{photo.stem}.retouched.jpg", f"{photo.name}.mask.png",
                                   f"{photo.name}.retouch.json"]), siblings
    assert temp_files(hot) == []


def _photo_events(daemon: Daemon) -> Counter:
    return Counter(e["status"] for e in daemon.events() if e.get("event") == "photo")


def test_hundred_photos_through_two_workers_each_processed_once(tmp_path, redis):
    hot = tmp_path / "hot"
    hot.mkdir()
    # The second worker sees the shared folder under another path, as a second machine would.
    (tmp_path / "mnt").mkdir()
    os.symlink(hot, tmp_path / "mnt" / "photos")
    sections = cluster_sections(redis)
    mapped = cluster_sections(redis, path_map=[f"{hot}={tmp_path / 'mnt' / 'photos'}"])
    with ExitStack() as stack:
        workers = [Worker(tmp_path, "a", sections=sections), Worker(tmp_path, "b", sections=mapped)]
        for worker in workers:
            stack.callback(worker.stop)
        daemon = stack.enter_context(Daemon(tmp_path, [hot], config={**sections, "daemon": {"settle_s": 0.2}},
                                            factory=None))
        stack.callback(daemon.stop)
        daemon.wait_ready()
        photos = _drop(hot, 100)
        _wait_reports(daemon, photos, 90, workers=workers)
        daemon.wait_for(lambda: _photo_events(daemon)["ok"] == 100, 20, "100 outcomes")

        done = Counter(e["path"] for e in read_log(tmp_path / "fake.log") if e["event"] == "done")
        assert sorted(done.values()) == [1] * 100  # each photo processed exactly once
        runners = Counter(_report(p)["runner"]["worker"] for p in photos)
        assert set(runners) == {"a@test", "b@test"}, runners  # both workers took photos
        assert all(_report(p)["runner"]["backend"] == "celery" for p in photos)
        _assert_one_complete_set_each(photos, hot)
        daemon.wait_for(lambda: (daemon.status() or {}).get("done") == 100, 10, "status: 100 done")
        assert daemon.status()["running"] == []

        from skinretouch.daemon.status import main_status

        config = parse_config({**sections, "daemon": {"state_dir": str(daemon.state_dir)}})
        shown = io.StringIO()
        with redirect_stdout(shown):
            assert main_status(config, stream=shown) == 0
        text = shown.getvalue()
        assert "waiting:  cpu: 0   gpu: 0" in text and "2 seen" in text, text
        assert "a@test" in text and "b@test" in text

    # The workers log JSON lines; each photo's carries its task id.
    photo_lines = [e for e in Daemon.events_of(workers[0].stdout_path) if e.get("event") == "photo"]
    assert photo_lines and all(e["task_id"] and e["path"].startswith(str(hot)) for e in photo_lines)


def test_kill_9_of_a_worker_mid_photo_loses_and_doubles_nothing(tmp_path, redis):
    hot = tmp_path / "hot"
    hot.mkdir()
    # max_deliveries = 2: each photo below is killed at most once, except the poison one.
    sections = cluster_sections(redis, max_deliveries=2)
    fake_log = tmp_path / "fake.log"
    with ExitStack() as stack:
        workers = [Worker(tmp_path, name, sections=sections, fake_delay_s=0.5) for name in ("a", "b")]
        for worker in workers:
            stack.callback(worker.stop)
        daemon = stack.enter_context(Daemon(tmp_path, [hot], config={**sections, "daemon": {"settle_s": 0.2}},
                                            factory=None))
        stack.callback(daemon.stop)
        daemon.wait_ready()
        photos = _drop(hot, 10)
        # A photo that crashes its pool process every time (the fake segfaults on "crash" names).
        (poison,) = _drop(hot, 1, prefix="crash")
        killed: list[str] = []
        deadline = time.monotonic() + 60
        while len(killed) < 5 and time.monotonic() < deadline:
            log = read_log(fake_log)
            finished = {(e["path"], e["pid"]) for e in log if e["event"] == "done"}
            running = [e for e in log if e["event"] == "started" and (e["path"], e["pid"]) not in finished
                       and e["path"] not in killed and "crash" not in e["path"] and time.time() - e["t"] < 0.3]
            for entry in running[: 5 - len(killed)]:  # both workers' at once: their restarts overlap
                os.kill(entry["pid"], signal.SIGKILL)  # the pool process writing this photo
                killed.append(entry["path"])
            time.sleep(0.05)
        assert len(killed) == 5, killed
        _wait_reports(daemon, [*photos, poison], 60, workers=workers)

        _assert_one_complete_set_each(photos, hot)
        done = Counter(e["path"] for e in read_log(fake_log) if e["event"] == "done")
        assert sorted(done[str(p)] for p in photos) == [1] * 10, done
        started = Counter(e["path"] for e in read_log(fake_log) if e["event"] == "started")
        assert all(started[path] == 2 for path in killed)  # each killed photo was redelivered once
        report = _report(poison)
        assert report["status"] == "failed" and "died 2 times" in report["error"], report
        assert started[str(poison)] == 2 and done[str(poison)] == 0
        assert temp_files(hot) == []
        daemon.wait_for(lambda: _photo_events(daemon)["ok"] == 10, 20, "10 outcomes")
        assert _photo_events(daemon)["failed"] == 1


@pytest.mark.xfail(strict=False, reason=(
    "known bug, issue 18 left open: in 1 of about 5 full runs one photo enqueued before Redis "
    "shut down was never received by any worker and got no report (cause not confirmed; likely "
    "the window between kombu's BRPOP and its unacked record). Planned fix: the daemon re-sends "
    "an in-flight photo whose outcome is overdue (visibility timeout + time limit)."))
def test_redis_restart_mid_batch_loses_nothing_and_the_daemon_says_so(tmp_path, redis):
    hot = tmp_path / "hot"
    hot.mkdir()
    sections = cluster_sections(redis)
    with ExitStack() as stack:
        workers = [Worker(tmp_path, name, sections=sections, fake_delay_s=0.1) for name in ("a", "b")]
        for worker in workers:
            stack.callback(worker.stop)
        daemon = stack.enter_context(Daemon(tmp_path, [hot], config={**sections, "daemon": {"settle_s": 0.2}},
                                            factory=None))
        stack.callback(daemon.stop)
        daemon.wait_ready()
        photos = _drop(hot, 30)
        daemon.wait_for(lambda: sum(_report(p) is not None for p in photos) >= 6, 30, "a few reports")
        redis.stop()
        late = _drop(hot, 10, prefix="late")  # dropped while the broker is down
        time.sleep(2.0)
        redis.start()
        _wait_reports(daemon, photos + late, 90, workers=workers)
        daemon.wait_for(lambda: _photo_events(daemon)["ok"] == 40, 60, "40 outcomes")

        _assert_one_complete_set_each(photos + late, hot)
        done = Counter(e["path"] for e in read_log(tmp_path / "fake.log") if e["event"] == "done")
        assert sorted(done.values()) == [1] * 40, done
        events = [e["event"] for e in daemon.events()]
        assert "broker_unreachable" in events and "broker_reconnected" in events
        assert events.index("broker_unreachable") < events.index("broker_reconnected")


def test_a_worker_that_cannot_see_the_path_fails_the_task_naming_the_path_mapping(tmp_path, redis):
    hot = tmp_path / "hot"
    hot.mkdir()
    sections = cluster_sections(redis)
    blind = cluster_sections(redis, path_map=[f"{hot}=/mnt/not-mounted/photos"])
    with ExitStack() as stack:
        worker = Worker(tmp_path, "blind", sections=blind)
        stack.callback(worker.stop)
        daemon = stack.enter_context(Daemon(tmp_path, [hot], config={**sections, "daemon": {"settle_s": 0.2}},
                                            factory=None))
        stack.callback(daemon.stop)
        daemon.wait_ready()
        (photo,) = _drop(hot, 1)
        _wait_reports(daemon, [photo], 60, workers=[worker])
        report = _report(photo)
        assert report["status"] == "failed"
        error = report["error"]
        assert "/mnt/not-mounted/photos/p000.jpg" in error and "cluster.path_map" in error
        assert f'"{hot}=/mnt/not-mounted/photos"' in error and "blind@test" in error
        failed = [e for e in daemon.events() if e.get("event") == "photo"]
        assert failed and failed[-1]["status"] == "failed" and "cluster.path_map" in failed[-1]["error"]
        assert "path_not_visible_retrying" in worker.output()  # retried once (max_retries = 1) first


def test_hard_cases_go_to_a_gpu_worker_while_one_is_up_else_are_done_classically(tmp_path, redis):
    from skinretouch.cluster.registry import workers_seen

    hot = tmp_path / "hot"
    hot.mkdir()
    sections = cluster_sections(redis)
    with ExitStack() as stack:
        cpu = Worker(tmp_path, "cpu", sections=sections, factory="cluster_fake:HardCaseFiles")
        gpu = Worker(tmp_path, "gpu", sections=sections, factory="cluster_fake:HardCaseFiles", queues="gpu")
        for worker in (cpu, gpu):
            stack.callback(worker.stop)
        daemon = stack.enter_context(Daemon(tmp_path, [hot], config={**sections, "daemon": {"settle_s": 0.2}},
                                            factory=None))
        stack.callback(daemon.stop)
        daemon.wait_for(lambda: len(workers_seen(redis.client())) == 2, 30, "two worker heartbeats")
        daemon.wait_ready()
        photos = _drop(hot, 3)
        _wait_reports(daemon, photos, 60, workers=[cpu, gpu])
        for photo in photos:
            report = _report(photo)
            assert report["status"] == "ok" and report["runner"]["queues"] == ["gpu"], report
            assert report["runner"]["worker"] == "gpu@test"
        assert cpu.output().count("photo_to_gpu_queue") == 3

        gpu.stop()  # no GPU worker any more: the CPU worker finishes hard cases itself
        (late,) = _drop(hot, 1, prefix="late")
        _wait_reports(daemon, [late], 30, workers=[cpu])
        report = _report(late)
        assert report["status"] == "ok" and report["runner"]["worker"] == "cpu@test"
        assert report["regions"][0]["fallback_reason"] == "lama unavailable: no weights on this machine"
        daemon.wait_for(lambda: _photo_events(daemon)["ok"] == 4, 20, "4 outcomes")


def test_a_photo_deferred_on_a_worker_is_handed_back_to_the_daemon_to_retry(tmp_path):
    """A worker whose disk is full defers the photo (no report); the daemon must retry it,
    not record a final failure."""
    import threading

    from skinretouch.cluster.dispatch import CeleryDispatcher
    from skinretouch.config import Config
    from skinretouch.daemon.queue import Job, JobQueue

    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"x")
    queue = JobQueue(4)
    seen: list[tuple[Job, object]] = []
    dispatcher = CeleryDispatcher(queue, config=Config(), state_dir=tmp_path, on_outcome=lambda j, o, s: seen.append((j, o)),
                                  on_ready=lambda _: None, on_fatal=lambda *_: None, abandon=threading.Event())
    job = Job(path=photo, root=tmp_path)
    queue.put(job, stop=threading.Event())
    assert queue.get(timeout=1) == job
    dispatcher._in_flight["t1"] = (job, 0.0)
    dispatcher._take_outcome({"task_id": "t1", "status": "deferred", "error": "No space left on device",
                              "report_written": False})
    (got, outcome), = seen
    assert got == job and outcome.status == "deferred" and outcome.report_path is None
    assert not (tmp_path / "p.jpg.retouch.json").exists()
