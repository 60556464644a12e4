"""A stand-in for the pipeline in the daemon's tests: no pixels, same file contract.

``FakeRetoucher(config)`` is a :class:`skinretouch.files.outcome.FileProcessor`: its
``process_file(path, out_dir=..., force=...)`` behaves like the real one for the daemon's purposes: it skips a photo whose ``ok`` report has the same sha256,
writes a ``failed`` report for an empty, truncated or non-image file, writes its outputs
atomically (slowly, in chunks, so that a kill can land mid-write) and appends one JSON
line per call to ``$FAKE_LOG`` after the report is in place: the evidence that a photo was
completed exactly once. ``$FAKE_DELAY_S`` is the time one photo takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

from skinretouch.atomic import atomic_write_bytes, atomic_writer
from skinretouch.config import config_sha256
from skinretouch.files.outcome import FileOutcome
from skinretouch.sidecars import output_paths


def _log(**record) -> None:
    record["t"] = time.time()
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(os.environ["FAKE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines from several workers never mix
    finally:
        os.close(fd)


def problem_with(data: bytes) -> str | None:
    if not data:
        return "empty file"
    if data[:3] == b"\xff\xd8\xff":
        return None if data.rstrip(b"\0").endswith(b"\xff\xd9") else "truncated JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return None if data[-12:-4] == b"\0\0\0\0IEND" else "truncated PNG"
    return "not a JPEG, PNG or TIFF file"


class FakeRetoucher:
    def __init__(self, config) -> None:
        self.config = config
        self.delay_s = float(os.environ.get("FAKE_DELAY_S", "0.01"))
        _log(event="loaded", pid=os.getpid(), config_sha256=config_sha256(config))

    def report_settings(self) -> dict:
        return {"config_sha256": config_sha256(self.config), "detector": "fake", "mask_dilation_px": 0}

    def close(self) -> None:
        pass

    def process_file(self, path, *, out_dir=None, force=False) -> FileOutcome:
        started = time.perf_counter()
        path = Path(path)
        paths = output_paths(path, Path(out_dir) if out_dir else None)
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if not force and paths.report.exists():
            previous = json.loads(paths.report.read_text())
            if previous["status"] == "ok" and previous["input"]["sha256"] == sha:
                _log(event="skipped", path=str(path), sha256=sha, pid=os.getpid())
                return FileOutcome(input_path=path, status="skipped", report_path=paths.report)
        _log(event="started", path=str(path), pid=os.getpid())
        if "crash" in path.name:  # a decoder bug that takes the whole process down
            os.kill(os.getpid(), signal.SIGSEGV)
        error = problem_with(data)
        paths.report.parent.mkdir(parents=True, exist_ok=True)
        if error is None:
            with atomic_writer(paths.image) as handle:  # slowly: a kill can land in here
                for quarter in range(4):
                    handle.write(data[quarter * len(data) // 4 : (quarter + 1) * len(data) // 4])
                    handle.flush()
                    time.sleep(self.delay_s / 4)
            atomic_write_bytes(paths.mask, b"\x89PNG fake mask")
        status = "ok" if error is None else "failed"
        report = {
            "schema": 1,
            "input": {"path": str(path), "sha256": sha},
            "outputs": {"image": str(paths.image) if error is None else None,
                        "mask": str(paths.mask) if error is None else None},
            "status": status,
            "error": error,
            "settings": {"config_sha256": config_sha256(self.config)},
            "pid": os.getpid(),
        }
        atomic_write_bytes(paths.report, json.dumps(report).encode())
        _log(event="done", path=str(path), sha256=sha, status=status, pid=os.getpid())
        return FileOutcome(
            input_path=path, status=status, error=error, report_path=paths.report,
            timings_ms={"total": (time.perf_counter() - started) * 1000},
        )
