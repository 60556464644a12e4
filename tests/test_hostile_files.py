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
