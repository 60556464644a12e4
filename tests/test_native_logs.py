"""MediaPipe's start-up log lines stay off the terminal; nothing else written meanwhile is lost."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skinretouch.detection.faces import DEFAULT_FACE_MODEL
from skinretouch.native_logs import is_native_chatter, native_chatter_quieted

# What a `skinretouch process` printed on every run before (pids and times vary).
MEDIAPIPE_START_UP = (
    b"WARNING: Logging before InitGoogle() is written to STDERR\n",
    b"W0000 00:00:1796680663.279688    3007 face_landmarker_graph.cc:181] Sets FaceBlendshapesGraph "
    b"acceleration to xnnpack by default.\n",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    b"W0000 00:00:1796680663.295434    3011 inference_feedback_manager.cc:121] Feedback manager requires "
    b"a model with a single signature inference. Disabling support for feedback tensors.\n",
    b"I0000 00:00:1796680663.307573    3011 gl_context.cc:369] GL version: 2.1\n",
)


def test_every_start_up_line_is_chatter_and_errors_are_not():
    assert all(is_native_chatter(line) for line in MEDIAPIPE_START_UP)
    assert not is_native_chatter(b"E0000 00:00:1796680663.3 3011 model_resources.cc:12] Unable to open file\n")
    assert not is_native_chatter(b"F0000 00:00:1796680663.3 3011 graph.cc:9] Check failed\n")
    assert not is_native_chatter(b"WARNING: something of our own\n")
    assert not is_native_chatter(b"photo.jpg: no such file or folder\n")


def test_chatter_is_dropped_and_everything_else_is_written_back_in_order(capfd):
    # Written to descriptor 2 directly: under capfd, sys.stderr goes to pytest's capture itself.
    with native_chatter_quieted():
        for line in MEDIAPIPE_START_UP[:3]:
            os.write(2, line)
        os.write(2, b"first message of ours\n")  # as a Python print to a real terminal does
        os.write(2, b"E0000 00:00:1796680663.3 3011 model_resources.cc:12] Unable to open file\n")
        for line in MEDIAPIPE_START_UP[3:]:
            os.write(2, line)
        os.write(2, b"second message of ours\n")
    print("after the block", file=sys.stderr, flush=True)
    err = capfd.readouterr().err
    assert err.splitlines() == [
        "first message of ours",
        "E0000 00:00:1796680663.3 3011 model_resources.cc:12] Unable to open file",
        "second message of ours",
        "after the block",
    ]


def test_an_exception_in_the_block_still_restores_the_terminal(capfd):
    with pytest.raises(RuntimeError), native_chatter_quieted():
        os.write(2, b"said before the failure\n")
        raise RuntimeError("model failed to load")
    print("said after it", file=sys.stderr, flush=True)
    assert capfd.readouterr().err.splitlines() == ["said before the failure", "said after it"]


def test_without_a_temporary_file_the_block_runs_and_prints_as_it_is(capfd, monkeypatch):
    """A service whose temporary folder is not writable still gets its face landmarker: the
    chatter is printed then, and nothing else changes."""
    import tempfile

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_room)
    ran = []
    with native_chatter_quieted():
        os.write(2, MEDIAPIPE_START_UP[0])
        ran.append(True)
    assert ran == [True]
    assert capfd.readouterr().err == MEDIAPIPE_START_UP[0].decode()


@pytest.mark.skipif(not DEFAULT_FACE_MODEL.is_file(), reason="the face model is fetched by `make`")
def test_process_prints_only_its_own_lines(tmp_path):
    """A whole `skinretouch process` (it creates the face landmarker): its terminal shows what it
    did and no line of mediapipe's start-up."""
    from skimage.data import astronaut

    photo = tmp_path / "portrait.jpg"
    Image.fromarray(np.ascontiguousarray(astronaut()[40:340, 100:400])).save(photo, quality=95)
    env = dict(os.environ, NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba")))
    completed = subprocess.run([sys.executable, "-m", "skinretouch", "process", str(photo)],
                               capture_output=True, env=env, timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert b"region(s)" in completed.stdout
    noise = [line for line in completed.stderr.splitlines(keepends=True) if is_native_chatter(line)]
    assert noise == []
    for fragment in (b"InitGoogle", b"XNNPACK", b"W0000", b"I0000"):
        assert fragment not in completed.stderr
