"""Shared fixtures and the guards every test runs under.

- ``bench_photos``: the benchmark's photos, decoded once per session.
- Thread guard: a test (and, at its end, a test module) must stop every thread it started.
  The code starts many (region pools, watchers, worker slots, settle trackers); one left
  running is a resource leak in a long-lived daemon.
- Warning guard: a warning a test did not expect fails it. Known third-party warnings are
  allowed one by one in :data:`ALLOWED_WARNINGS`, each with its reason.
"""

from __future__ import annotations

import re
import threading
import time
import warnings

import numpy as np
import pytest

from skinretouch.benchmark.photos import BenchPhoto, load_bench_photos

# Threads that live as long as the object owning them, which tests often hold in a
# module-scoped fixture: checked when the module ends instead of after each test.
MODULE_LIFETIME_THREADS = (
    "skinretouch-region",  # pipeline.Retoucher's region pool
    "skinretouch-tiles",  # review.previews.PreviewCache's background tiles (closed with the review app)
)
# Third-party threads that live as long as the process, by design.
PROCESS_LIFETIME_THREADS = (
    "tqdm_monitor",  # tqdm's TMonitor, started with the first progress bar (diffusers' pipelines)
    "AnyIO worker thread",  # anyio's pool for Starlette's sync handlers; each exits after 10 s idle
)
# How long a finished test's threads get to notice their stop signal and exit.
THREAD_EXIT_GRACE_S = 5.0

# (category, message regex, module regex or None): warnings that come from third-party
# code, that the project cannot fix, and that say nothing about its own behaviour.
ALLOWED_WARNINGS: tuple[tuple[type[Warning], str, str | None], ...] = (
    # torch 2.13 announces its new ONNX exporter on every legacy (TorchScript) export; the
    # ViT backbone's export uses the legacy one on purpose (engines/backbone.py).
    (DeprecationWarning, r"^You are using the legacy TorchScript-based ONNX export", None),
    (DeprecationWarning, r"^The feature will be removed", r"^torch\.onnx\._internal\.torchscript_exporter\."),
    # The same export traces the ViT, whose patch-grid size check is a Python bool at trace
    # time; the exported graph is checked against torch in test_reference_backbone.py.
    (Warning, r"^Converting a tensor to a Python boolean", r"^skinretouch\.engines\.backbone$"),
)


@pytest.fixture(scope="session")
def bench_photos() -> dict[str, BenchPhoto]:
    """The bench photos by name (astronaut, grace_hopper, and dermapred when it is cached)."""
    return {photo.name: photo for photo in load_bench_photos()}


def _alive_new_threads(before: set[threading.Thread], *, ignore: tuple[str, ...]) -> list[threading.Thread]:
    deadline = time.monotonic() + THREAD_EXIT_GRACE_S
    while True:
        leaked = [
            thread
            for thread in threading.enumerate()
            if thread not in before and thread.is_alive() and not thread.name.startswith(ignore)
        ]
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.02)


@pytest.fixture(scope="session", autouse=True)
def _face_landmarker_started_once():
    """The Face Landmarker (and mediapipe's dispatcher thread) lives as long as the process,
    like a loaded model: start it before the per-module thread guard takes its snapshot."""
    from skinretouch.detection.faces import find_landmark_faces, landmarker_available

    if landmarker_available():
        find_landmark_faces(np.zeros((64, 64, 3), np.float32))
    yield


@pytest.fixture(scope="module", autouse=True)
def _no_thread_leaks_per_module(_face_landmarker_started_once):
    before = set(threading.enumerate())
    yield
    leaked = _alive_new_threads(before, ignore=PROCESS_LIFETIME_THREADS)
    if leaked:
        pytest.fail(f"threads still running after the module's tests: {[t.name for t in leaked]}")


@pytest.fixture(autouse=True)
def _no_thread_leaks():
    before = set(threading.enumerate())
    yield
    leaked = _alive_new_threads(before, ignore=MODULE_LIFETIME_THREADS + PROCESS_LIFETIME_THREADS)
    if leaked:
        pytest.fail(f"threads still running after the test: {[t.name for t in leaked]}")


def _allowed(message: warnings.WarningMessage) -> bool:
    module = _warning_module(message)
    for category, text, origin in ALLOWED_WARNINGS:
        if not issubclass(message.category, category):
            continue
        if not re.search(text, str(message.message)):
            continue
        if origin is None or re.search(origin, module):
            return True
    return False


def _warning_module(message: warnings.WarningMessage) -> str:
    """The dotted module a warning was attributed to, from its file name."""
    path = message.filename.replace("\\", "/")
    marker = "/site-packages/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif "/skinretouch/" in path:
        path = "skinretouch/" + path.rsplit("/skinretouch/", 1)[1]
    return path.removesuffix(".py").replace("/", ".")


@pytest.fixture(autouse=True)
def _no_unexpected_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    unexpected = [m for m in caught if not _allowed(m)]
    if unexpected:
        lines = [f"{m.category.__name__}: {m.message} ({m.filename}:{m.lineno})" for m in unexpected]
        pytest.fail("unexpected warnings:\n  " + "\n  ".join(lines))
