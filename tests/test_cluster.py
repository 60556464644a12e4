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

from daemon_helpers import Daemon, done_counts, photo_bytes, read_log, temp_files
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
        # The outcome is counted just before the job leaves the running set; the status file
        # catches up within its write interval.
        daemon.wait_for(lambda: (status := daemon.status() or {}).get("done") == 100 and status.get("running") == [],
                        10, "status: 100 done, none running")

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
        # The reports are written before the daemon logs each outcome: wait for all eleven
        # (waiting for the ten ok ones alone raced the poison photo's line on a loaded machine).
        daemon.wait_for(lambda: _photo_events(daemon)["ok"] + _photo_events(daemon)["failed"] >= 11, 20,
                        "11 outcomes")
        outcomes = _photo_events(daemon)
        assert outcomes["ok"] == 10 and outcomes["failed"] == 1


def test_redis_restart_mid_batch_loses_nothing_and_the_daemon_says_so(tmp_path, redis):
    hot = tmp_path / "hot"
    hot.mkdir()
    sections = cluster_sections(redis, lost_check_s=1.0)
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
        recorded = Counter(e["path"] for e in daemon.events() if e.get("event") == "photo")
        assert sorted(recorded.values()) == [1] * 40, recorded  # a re-sent photo is recorded once too
        events = [e["event"] for e in daemon.events()]
        assert "broker_unreachable" in events and "broker_reconnected" in events
        assert events.index("broker_unreachable") < events.index("broker_reconnected")


def _message_path(raw: bytes) -> str:
    """The photo a task message (as it waits in a queue) is for."""
    import base64

    return json.loads(base64.b64decode(json.loads(raw)["body"]))[1]["path"]


def test_a_photo_the_broker_lost_is_sent_again_and_still_runs_once(tmp_path, redis):
    """A Redis restart can forget a message a worker was taking (its BRPOP done, its record
    as taken not yet written). Here the test takes it: after the restart the daemon finds
    the photo nowhere, says so and sends it again; the lost copy coming back late, while its
    twin is at work and again after, runs nothing and records nothing."""
    hot = tmp_path / "hot"
    hot.mkdir()
    sections = cluster_sections(redis, lost_check_s=0.5)
    fake_log = tmp_path / "fake.log"
    with ExitStack() as stack:
        daemon = stack.enter_context(Daemon(tmp_path, [hot], config={**sections, "daemon": {"settle_s": 0.2}},
                                            factory=None))
        stack.callback(daemon.stop)
        daemon.wait_ready()
        lost, kept = _drop(hot, 2)
        client = redis.client()
        daemon.wait_for(lambda: client.llen("cpu") == 2, 30, "two tasks waiting")
        taken = client.rpop("cpu")  # the oldest: the first photo's
        assert _message_path(taken) == str(lost)
        workers = [Worker(tmp_path, name, sections=sections, fake_delay_s=2.5) for name in ("a", "b")]
        for worker in workers:
            stack.callback(worker.stop)
        _wait_reports(daemon, [kept], 60, workers=workers)
        daemon.wait_for(lambda: all("Connected to" in w.output() for w in workers), 30, "two workers consuming")
        redis.stop()
        redis.start()
        client = redis.client()
        daemon.wait_event("photo_resent", 30)
        # The re-sent copy at work on one worker, the other reconnected and idle: the lost
        # copy comes back and meets the lock.
        daemon.wait_for(lambda: any(e["event"] == "started" and e["path"] == str(lost) for e in read_log(fake_log))
                        and all(w.output().count("Connected to") >= 2 for w in workers), 30, "re-sent copy at work")
        client.lpush("cpu", taken)
        daemon.wait_event("photo_repeat_skipped", 30)
        _wait_reports(daemon, [lost, kept], 30, workers=workers)
        client.lpush("cpu", taken)  # and once more, after the photo is done: its outputs are complete
        daemon.wait_event("photo_repeat_outcome_ignored", 30)

        events = daemon.events()
        (resent,) = [e for e in events if e["event"] == "photo_resent"]
        assert resent["path"] == str(lost) and "after a broker restart" in resent["reason"], resent
        (repeat,) = [e for e in events if e["event"] == "photo_repeat_skipped"]
        assert repeat["path"] == str(lost) and repeat["held_by"] == resent["task_id"]
        (ignored,) = [e for e in events if e["event"] == "photo_repeat_outcome_ignored"]
        assert ignored["path"] == str(lost) and ignored["reason"] == "outputs complete for this content and config"
        recorded = Counter((e["path"], e["status"]) for e in events if e["event"] == "photo")
        assert recorded == {(str(lost), "ok"): 1, (str(kept), "ok"): 1}, recorded
        assert done_counts(read_log(fake_log)) == {str(lost): 1, str(kept): 1}
        _assert_one_complete_set_each([lost, kept], hot)
        assert _report(lost)["runner"]["worker"] in ("a@test", "b@test")


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
        # The worker writes the report; the daemon logs the outcome when it reads it, a moment later.
        daemon.wait_event("photo")
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


def _dispatcher_with_one_photo(tmp_path):
    """A dispatcher (not started) holding one sent photo, and the outcomes it records."""
    import threading

    from skinretouch.cluster.dispatch import CeleryDispatcher
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
    flight = dispatcher._track(job, {"path": str(photo), "sha256": "s", "config_sha256": "c"})
    return dispatcher, flight, seen


def test_a_photo_deferred_on_a_worker_is_handed_back_to_the_daemon_to_retry(tmp_path):
    """A worker whose disk is full defers the photo (no report); the daemon must retry it,
    not record a final failure."""
    dispatcher, flight, seen = _dispatcher_with_one_photo(tmp_path)
    dispatcher._take_outcome({"task_id": flight.task_ids[0], "status": "deferred", "error": "No space left on device",
                              "report_written": False})
    (got, outcome), = seen
    assert got == flight.job and outcome.status == "deferred" and outcome.report_path is None
    assert not (tmp_path / "p.jpg.retouch.json").exists()


def test_a_re_sent_photo_is_recorded_once_whichever_copy_answers(tmp_path):
    """Two copies of one photo (a re-send): a copy that finds the other at work does not end
    the photo, the working copy's outcome does, and a late repeat changes nothing."""
    dispatcher, flight, seen = _dispatcher_with_one_photo(tmp_path)
    first = flight.task_ids[0]
    second = dispatcher._new_task_id(flight)
    dispatcher._take_outcome({"task_id": first, "status": "skipped", "reason": f"being processed by task {second}",
                              "held_by": second})
    assert seen == [] and dispatcher._in_flight == {second: flight}
    dispatcher._take_outcome({"task_id": second, "status": "ok", "report_written": True})
    dispatcher._take_outcome({"task_id": first, "status": "skipped", "already_done": True})  # a late repeat
    assert [o.status for _, o in seen] == ["ok"] and dispatcher._in_flight == {} and not dispatcher._flights

    # The copy that did the work lost its outcome; the repeat finds the outputs complete: done.
    (tmp_path / "again").mkdir()
    dispatcher, flight, seen = _dispatcher_with_one_photo(tmp_path / "again")
    (tmp_path / "again" / "p.jpg.retouch.json").write_text(json.dumps({"status": "ok", "timings_ms": {"total": 5.0}}))
    second = dispatcher._new_task_id(flight)
    dispatcher._take_outcome({"task_id": second, "status": "skipped", "already_done": True,
                              "reason": "outputs complete for this content and config"})
    (_, outcome), = seen
    assert outcome.status == "ok" and outcome.timings_ms == {"total": 5.0}
    assert outcome.report_path == tmp_path / "again" / "p.jpg.retouch.json"


def test_the_lost_watch_finds_a_photo_missing_from_redis_twice(redis):
    """Only a photo that is nowhere in Redis at two looks is lost; waiting, taken, locked and
    finished ones are not; without a restart only overdue photos are looked at."""
    from types import SimpleNamespace

    from skinretouch.cluster.lost import LostWatch

    client = redis.client()

    def message(task_id):
        return json.dumps({"body": "", "headers": {"id": task_id}, "properties": {}})

    client.lpush("cpu", message("waiting"))
    client.hset("unacked", "tag-1", json.dumps([json.loads(message("taken")), "", "cpu"]))
    client.set("lock-of-working", "working")
    client.rpush("outcomes", json.dumps({"task_id": "finished", "status": "ok"}))
    photos = [SimpleNamespace(task_ids=[name], lock=f"lock-of-{name}", last_seen=0.0)
              for name in ("waiting", "taken", "working", "finished", "lost")]
    photos.append(SimpleNamespace(task_ids=["lost-first-copy", "finished"], lock="x", last_seen=0.0))
    client.hset("unacked", "tag-2", json.dumps([json.loads(message("taken-and-working")), "", "cpu"]))
    client.set("lock-of-taken-and-working", "taken-and-working")
    photos.append(SimpleNamespace(task_ids=["taken-and-working"], lock="lock-of-taken-and-working", last_seen=0.0))
    watch = LostWatch(check_s=1.0, overdue_s=100.0, queues=("cpu", "gpu"), reply_to="outcomes")
    assert watch.look(client, photos, now=10.0) == []  # nothing overdue, no restart seen yet
    watch.broker_back(now=10.0)
    assert watch.due(11.0) and watch.look(client, photos, now=11.0) == []  # missing once: not yet lost
    assert not watch.due(11.5)
    lost = watch.look(client, photos, now=12.0)
    # Right after a restart, a message taken by a worker with no task at work on it is an orphan.
    assert [photo.task_ids for photo, _ in lost] == [["taken"], ["lost"]], lost
    assert all("after a broker restart" in why for _, why in lost)
    assert all(photo.last_seen == 12.0 for photo in photos if photo.task_ids[0] not in ("taken", "lost"))
    photos[1].last_seen = 12.0  # as the re-send does
    # Long after the restart, only photos not seen for overdue_s are looked at.
    assert watch.look(client, photos, now=200.0) == []  # "lost" (never re-sent here) is missing once
    (found, why), = watch.look(client, photos, now=201.0)
    assert found is photos[4] and "outcome overdue" in why


def test_a_worker_whose_ack_the_broker_misses_keeps_taking_photos(redis):
    """kombu's Redis QoS keeps the prefetch slot of a message whose ack failed, so a worker
    with prefetch 1 never asks for another photo; ours frees it and still raises."""
    from kombu import Connection

    from skinretouch.cluster.app import TRANSPORT

    from cluster_helpers import free_port

    with Connection(redis.url, transport=TRANSPORT) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        message = channel.prepare_message("{}", content_type="application/json")
        channel.basic_publish(message, exchange="", routing_key="q")
        channel.queue_declare("q")
        delivered = channel.basic_get("q", no_ack=False)
        assert delivered is not None and not channel.qos.can_consume()
        # The broker goes away before the ack reaches it.
        channel._pool = channel._get_pool().__class__(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
        with pytest.raises(channel.connection_errors):
            delivered.ack()
        assert channel.qos.can_consume()
