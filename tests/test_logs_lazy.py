"""Logging imports structlog only when something logs, and logs as before once it does.

structlog costs ~100 ms of start-up (it imports rich, pygments and asyncio), and a plain
``skinretouch process`` logs nothing. The probes run in fresh interpreters, where
structlog is really not imported yet (this test process imported it long ago).
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import textwrap

import pytest
import structlog
from PIL import Image

from skinretouch.config import LoggingConfig
from skinretouch.logs import configure_logging, get_logger

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z")


@pytest.fixture
def restore_logging():
    """The in-process tests reconfigure logging; later tests get the previous set-up back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def _probe(code: str, timeout: float = 60) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_processing_a_photo_that_logs_nothing_never_imports_structlog(tmp_path):
    from skimage.data import astronaut

    photo = tmp_path / "face.jpg"
    face = astronaut()[60:316, 110:366].copy()
    face[56:62, 88:94] = (200, 60, 60)  # a red spot on the cheek
    Image.fromarray(face).save(photo, "JPEG", quality=95)
    out = _probe(f"""
        import sys
        from skinretouch.cli import main
        try:
            code = main(["process", {str(photo)!r}, "--out-dir", {str(tmp_path / "out")!r}])
        except SystemExit as exit:
            code = exit.code
        print(code, "structlog" in sys.modules)
    """, timeout=300)
    assert out.split()[-2:] == ["0", "False"]
    assert (tmp_path / "out" / "face.retouched.jpg").exists()


def test_json_lines_reach_the_configured_stream_when_structlog_comes_after_configuration():
    out = _probe("""
        import io, json, sys
        from skinretouch.config import LoggingConfig
        from skinretouch.logs import bind_contextvars, configure_logging, get_logger

        log = get_logger("skinretouch.probe")
        stream = io.StringIO()
        configure_logging(LoggingConfig(format="json", level="info"), stream=stream)
        log.debug("too_quiet", n=0)  # below the level: dropped, without importing structlog
        before = "structlog" in sys.modules
        bind_contextvars(worker=3)
        log.info("photo_done", path="a.jpg", seconds=float("nan"))
        print(json.dumps({"before": before, "after": "structlog" in sys.modules,
                          "written": stream.getvalue()}))
    """)
    result = json.loads(out)
    assert result["before"] is False and result["after"] is True
    lines = result["written"].splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "photo_done" and record["level"] == "info"
    assert record["path"] == "a.jpg" and record["seconds"] == "nan" and record["worker"] == 3
    assert TIMESTAMP.fullmatch(record["timestamp"])


def test_levels_filter_before_and_after_structlog_is_imported():
    out = _probe("""
        import io, json, sys
        from skinretouch.config import LoggingConfig
        from skinretouch.logs import configure_logging, get_logger

        log = get_logger("skinretouch.probe")
        stream = io.StringIO()
        configure_logging(LoggingConfig(format="json", level="warning"), stream=stream)
        log.info("dropped_lazily")
        log.log(20, "dropped_lazily_too")
        lazy = "structlog" in sys.modules
        log.warning("kept", n=1)
        log.info("dropped_by_structlog")
        log.log(40, "kept_too")
        print(json.dumps({"lazy": lazy, "events": [json.loads(l)["event"] for l in stream.getvalue().splitlines()]}))
    """)
    result = json.loads(out)
    assert result == {"lazy": False, "events": ["kept", "kept_too"]}


def _console_line(text: str) -> str:
    return TIMESTAMP.sub("<time>", text.strip())


def test_console_format_on_a_non_terminal_is_the_same_readable_line_lazily_or_not(restore_logging):
    lazy = _probe("""
        import io
        from skinretouch.config import LoggingConfig
        from skinretouch.logs import configure_logging, get_logger

        stream = io.StringIO()
        configure_logging(LoggingConfig(format="console"), stream=stream)
        get_logger("skinretouch.probe").warning("disk_low", free_mb=12)
        print(stream.getvalue(), end="")
    """)
    stream = io.StringIO()  # this process imported structlog already: configured at once
    configure_logging(LoggingConfig(format="console"), stream=stream)
    get_logger("skinretouch.probe").warning("disk_low", free_mb=12)
    eager = stream.getvalue()

    assert _console_line(lazy) == _console_line(eager)
    line = _console_line(lazy)
    assert "\x1b[" not in line  # no colours off a terminal
    assert "[warning" in line and "disk_low" in line and "free_mb=12" in line
    assert not line.startswith("{")


def test_auto_format_on_a_non_terminal_is_json(restore_logging):
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="auto"), stream=stream)
    get_logger("skinretouch.probe").info("started", workers=2)
    record = json.loads(stream.getvalue())
    assert record["event"] == "started" and record["workers"] == 2


def test_capture_logs_sees_module_loggers():
    log = get_logger("skinretouch.probe")
    with structlog.testing.capture_logs() as captured:
        log.warning("slow_photo", seconds=3)
    assert captured == [{"event": "slow_photo", "seconds": 3, "log_level": "warning"}]


def test_capture_logs_wins_over_a_configuration_made_before_structlog_was_imported():
    out = _probe("""
        import io, json
        from skinretouch.config import LoggingConfig
        from skinretouch.logs import configure_logging, get_logger

        stream = io.StringIO()
        configure_logging(LoggingConfig(format="json"), stream=stream)
        import structlog.testing
        with structlog.testing.capture_logs() as captured:
            get_logger("skinretouch.probe").info("seen", n=1)
        print(json.dumps({"captured": captured, "written": stream.getvalue()}))
    """)
    result = json.loads(out)
    assert result == {"captured": [{"event": "seen", "n": 1, "log_level": "info"}], "written": ""}
