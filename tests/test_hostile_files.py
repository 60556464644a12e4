"""Hostile inputs and bad config through ``skinretouch process`` and the config loader (issue 15)."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinretouch.cli import main
from skinretouch.config import load_config, parse_config
from skinretouch.errors import ConfigError


def _photo(path: Path, seed: int = 0, size: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    pixels = (120 + rng.random((size, size, 3)) * 60).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=92)
    return path


def _report(photo: Path, folder: Path | None = None) -> dict:
    return json.loads(((folder or photo.parent) / f"{photo.name}.retouch.json").read_text())


def _run_unblocking(argv: list[str], fifos: list[Path]) -> int:
    """``main(argv)``, but fail instead of hanging for ever if it blocks on a FIFO."""
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    runner.start()
    runner.join(60)
    if runner.is_alive():
        for fifo in fifos:  # give the stuck reader an end of file so the thread ends
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if fifo.exists() else None
            if fd is not None:
                os.close(fd)
        runner.join(10)
        pytest.fail(f"{argv} blocked on a FIFO")
    return result[0]


def test_fifos_and_devices_are_refused_without_hanging(tmp_path, capsys):
    fifo = tmp_path / "f.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    good = _photo(tmp_path / "q.jpg")
    os.mkfifo(tmp_path / "q.jpg.retouch.json")  # a FIFO where the report goes
    code = _run_unblocking(["process", str(fifo), str(zero), str(good)], [fifo, tmp_path / "q.jpg.retouch.json"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{fifo}: is a FIFO" in err and f"{zero}: is a character device" in err
    assert _report(good)["status"] == "ok"  # the FIFO at the report's name was replaced


def test_link_loops_long_names_and_corrupt_data_give_clear_per_file_results(tmp_path, capsys):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to("loop.jpg")
    long_name = _photo(tmp_path / ("n" * 242 + ".jpg"))
    damaged = tmp_path / "damaged.jpg"
    data = _photo(tmp_path / "whole.jpg", 3, size=128).read_bytes()
    scan = data.find(b"\xff\xda")
    damaged.write_bytes(data[: scan + (len(data) - scan) // 2] + b"\xff\xd9")  # valid end marker
    assert main(["process", str(loop), str(long_name), str(damaged)]) == 1
    err = capsys.readouterr().err
    assert f"{loop}: symbolic link loop" in err
    assert f"{damaged}: JPEG image data is corrupt" in err
    assert _report(damaged)["status"] == "failed"
    written = [p for p in tmp_path.iterdir() if p.name.startswith("n" * 200) and p != long_name]
    assert len(written) == 3 and all(len(p.name.encode()) <= 255 for p in written)
    report = next(p for p in written if p.name.endswith(".retouch.json"))
    assert json.loads(report.read_text())["status"] == "ok"


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_mask_decompression_bomb_is_a_clear_per_file_error(tmp_path, capsys):
    photo = _photo(tmp_path / "x.jpg")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(40000, 40000))
    assert main(["process", str(photo), "--mask", str(bomb)]) == 1
    err = capsys.readouterr().err
    assert f"{photo}: mask {bomb}" in err and "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", ["daemon.settle_s", "daemon.grace_s", "detect.sensitivity", "route.small_max_diameter_px"])
def test_non_finite_numbers_are_config_errors_naming_the_key(tmp_path, key, value):
    section, name = key.split(".")
    config = tmp_path / "c.toml"
    config.write_text(f"[{section}]\n{name} = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.key == key and "finite" in str(caught.value)


@pytest.mark.parametrize("key,value", [("daemon.workers", 100_000), ("daemon.queue_size", 10**9),
                                       ("removal.threads", 100_000)])
def test_counts_have_upper_bounds(key, value):
    section, name = key.split(".")
    with pytest.raises(ConfigError) as caught:
        parse_config({section: {name: value}})
    assert caught.value.key == key


def test_log_lines_stay_valid_json_with_non_finite_values(capsys):
    import structlog

    from skinretouch.config import LoggingConfig
    from skinretouch.logs import configure_logging

    configure_logging(LoggingConfig(format="json"), stream=None)
    structlog.get_logger("t").info("odd", value=float("nan"), nested={"x": float("inf")})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["value"] == "nan" and record["nested"]["x"] == "inf"


# --- whose files are whose, collisions, full disks, stale outputs (file stage) --------------


def test_a_users_own_retouched_named_photo_is_neither_overwritten_nor_taken_for_ours(tmp_path, capsys):
    portrait = _photo(tmp_path / "portrait.jpg", 1)
    users = _photo(tmp_path / "portrait.retouched.jpg", 2)
    original = users.read_bytes()
    assert main(["process", str(portrait), str(users)]) == 1
    err = capsys.readouterr().err
    assert f"{portrait}: would overwrite {users}" in err
    assert users.read_bytes() == original  # the user's file is untouched
    assert _report(users)["status"] == "ok"  # ... and, being no output of ours, processed
    assert (tmp_path / "portrait.retouched.retouched.jpg").exists()

    # An output a report claims is ours: named again (``process *.jpg`` after a run), it
    # is skipped, not processed as an input.
    again = tmp_path / "again"
    again.mkdir()
    photo = _photo(again / "p.jpg", 3)
    assert main(["process", str(photo)]) == 0
    ours = again / "p.retouched.jpg"
    stamp = ours.stat().st_mtime_ns
    assert main(["process", str(photo), str(ours)]) == 0
    assert not (again / "p.retouched.jpg.retouch.json").exists()
    assert ours.stat().st_mtime_ns == stamp


def test_the_users_mask_file_is_never_rewritten(tmp_path, capsys):
    photo = _photo(tmp_path / "x.jpg")
    mask = tmp_path / "x.jpg.mask.png"
    grey = np.zeros((64, 64), np.uint8)
    grey[20:30, 20:30] = 128
    Image.fromarray(grey).save(mask)
    before = mask.read_bytes()
    assert main(["process", str(photo), "--mask", str(mask)]) == 1
    assert "would overwrite the --mask file" in capsys.readouterr().err
    assert mask.read_bytes() == before
    out = tmp_path / "out"
    assert main(["process", str(photo), "--mask", str(mask), "--out-dir", str(out)]) == 0
    assert mask.read_bytes() == before and (out / "x.jpg.mask.png").exists()


def test_colliding_outputs_in_one_out_dir_stop_before_anything_is_processed(tmp_path, capsys):
    for folder, seed in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        _photo(tmp_path / folder / "p.jpg", seed)
    out = tmp_path / "out"
    code = main(["process", str(tmp_path / "a" / "p.jpg"), str(tmp_path / "b" / "p.jpg"), "--out-dir", str(out)])
    assert code == 2
    assert "would both write p.retouched.jpg" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_missing_out_dir_is_created_and_errors_name_the_real_reason(tmp_path, capsys):
    photo = tmp_path / "b.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    wrong_mask = tmp_path / "m.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(wrong_mask)
    out = tmp_path / "new" / "out"
    assert main(["process", str(photo), "--mask", str(wrong_mask), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "10x10" in err and ".tmp" not in err and "cannot write" not in err
    assert _report(photo, out)["status"] == "failed"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["process", str(photo), "--out-dir", str(blocker / "out")]) == 2
    assert "--out-dir" in capsys.readouterr().err


def test_a_later_failure_removes_the_outputs_of_an_earlier_success(tmp_path, capsys):
    photo = _photo(tmp_path / "s.jpg", 4)
    assert main(["process", str(photo)]) == 0
    retouched, mask = tmp_path / "s.retouched.jpg", tmp_path / "s.jpg.mask.png"
    assert retouched.exists() and mask.exists()
    data = photo.read_bytes()
    photo.write_bytes(data[: len(data) // 2])  # replaced by a damaged copy
    assert main(["process", str(photo)]) == 1
    assert _report(photo)["status"] == "failed"
    assert not retouched.exists() and not mask.exists()


def test_a_full_disk_is_not_a_failure_and_the_photo_is_redone_once_there_is_room(tmp_path, capsys):
    from small_disk import fill, small_disk

    with small_disk(tmp_path / "disk", 2048) as disk:
        photo = _photo(disk / "full.jpg", 5, size=256)
        filler = fill(disk, leave_bytes=2000)
        assert main(["process", str(photo)]) == 1
        err = capsys.readouterr().err
        assert "No space left on device" in err and "tried again" in err and ".tmp" not in err
        assert not (disk / "full.jpg.retouch.json").exists()  # no final "failed" report
        assert sorted(p.name for p in disk.iterdir()) == [".filler", "full.jpg"]  # nothing partial
        filler.unlink()
        assert main(["process", str(photo)]) == 0
        assert _report(photo)["status"] == "ok"


@pytest.mark.parametrize("section", ['onnx = {model = "/nowhere/model.onnx"}',
                                     'references = ["/nowhere/a.png"]\nreference_masks = ["/nowhere/m.png"]'])
def test_missing_detector_files_exit_2_from_process_and_watch_alike(tmp_path, section, capsys):
    import subprocess
    import sys

    config = tmp_path / "c.toml"
    config.write_text(f'[detect]\n{section}\n[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    photo = _photo(tmp_path / "a.jpg")
    assert main(["process", str(photo), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "detect.onnx.model" in err or "detect.references" in err, err
    watch = subprocess.run([sys.executable, "-m", "skinretouch", "watch", str(tmp_path), "--once",
                            "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert watch.returncode == 2 and "detect." in watch.stderr, watch.stderr
