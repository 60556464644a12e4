"""Kernels called through their ahead-of-time compiled functions only for the exact argument
types those were compiled for (issue 17): a compiled function reads an array as the layout it
was compiled for, so a wrong match would read the wrong pixels, not raise."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from numba import typeof

from skinretouch.kernels import ahead_of_time, color
from skinretouch.kernels.ahead_of_time import argument_type


def _values() -> list:
    base = np.arange(4 * 6 * 3, dtype=np.float32).reshape(4, 6, 3)
    readonly = base.copy()
    readonly.flags.writeable = False
    unaligned = np.frombuffer(bytearray(4 * 10 + 1), dtype=np.uint8)[1:].view(np.float32)
    return [
        base, base[:, ::2], np.asfortranarray(base[:, :, 0]), base[:, :, 0], readonly, base[0, 0],
        np.zeros(5, np.uint8), np.zeros((3, 3), np.uint16), np.zeros((2, 2), np.bool_), np.zeros(3, np.int64),
        np.zeros(3, np.int32), np.zeros((2, 2), np.float64), np.zeros((0, 3), np.float32), unaligned,
        1, -(2**40), 2.5, True, False, np.float32(1.5), np.int64(3), np.uint8(7), np.bool_(True), None,
        (1, 2), (1, 2.0), (np.zeros(2, np.float32), 3),
    ]  # fmt: skip


@pytest.mark.parametrize("value", _values(), ids=lambda v: f"{type(v).__name__}")
def test_a_value_gets_the_key_of_the_type_numba_dispatches_it_on(value):
    assert argument_type(value) == ahead_of_time.numba_type_key(typeof(value))


def test_layouts_dtypes_and_writability_are_told_apart():
    base = np.zeros((4, 6, 3), np.float32)
    readonly = base.copy()
    readonly.flags.writeable = False
    keys = {argument_type(v) for v in (base, base[:, ::2], base.astype(np.float64), readonly, base[0], 1, 1.0, True)}
    assert len(keys) == 8


def test_values_no_compiled_function_takes_have_no_key():
    assert argument_type("text") is None
    assert argument_type(2**70) is None
    assert argument_type(np.complex64(1)) is None
    assert argument_type([1, 2]) is None


def test_a_call_runs_the_compiled_function_of_its_types_and_the_jit_for_any_other(monkeypatch):
    """With a compiled function for C-contiguous float32 images only, a C-contiguous call takes
    it; a strided view (which it would misread) and float64 go to numba with numba's result."""
    kernel = color.rgb_to_lab_into
    rgb = np.random.default_rng(0).random((5, 8, 3)).astype(np.float32)
    calls = []

    def compiled(image, out):
        calls.append(image.shape)
        kernel.dispatcher(image, out)

    key = (argument_type(rgb), argument_type(np.empty_like(rgb)))
    monkeypatch.setattr(kernel, "_compiled", {key: compiled})
    out = np.empty_like(rgb)
    kernel(rgb, out)
    assert calls == [(5, 8, 3)]

    strided, strided_out = rgb[:, ::2], np.empty((5, 4, 3), np.float32)
    kernel(strided, strided_out)
    expected = np.empty_like(strided_out)
    kernel.dispatcher(np.ascontiguousarray(strided), expected)
    assert calls == [(5, 8, 3)] and np.array_equal(strided_out, expected)

    wide = np.empty((5, 8, 3), np.float32)
    kernel(rgb.astype(np.float64), wide)
    assert calls == [(5, 8, 3)] and np.allclose(wide, out, atol=1e-3)


def test_arguments_left_to_their_defaults_are_filled_before_matching(monkeypatch):
    kernel = color.rgb_to_lab_into
    rgb = np.zeros((2, 2, 3), np.float32)
    seen = []
    key = (argument_type(rgb), argument_type(rgb))
    monkeypatch.setattr(kernel, "_compiled", {key: lambda image, out: seen.append("compiled")})
    kernel(rgb, out=np.zeros_like(rgb))
    assert seen == ["compiled"]


def test_the_fingerprint_changes_with_the_kernels_sources(tmp_path, monkeypatch):
    before = ahead_of_time.fingerprint()
    for path in ahead_of_time.FOLDER.glob("*.py"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(ahead_of_time, "FOLDER", tmp_path)
    assert ahead_of_time.fingerprint() == before
    (tmp_path / "color.py").write_text((tmp_path / "color.py").read_text() + "\n# changed\n")
    assert ahead_of_time.fingerprint() != before


def test_a_library_and_table_that_do_not_load_leave_the_jit(tmp_path):
    library = tmp_path / "skinretouch_kernels_0.cpython-311-x86_64-linux-gnu.so"
    assert ahead_of_time.load_library(library) == {}
    library.write_bytes(b"not a shared object")
    (tmp_path / "skinretouch_kernels_0.json").write_text('{"x": [[["<f4"], "k_0"]]}')
    assert ahead_of_time.load_library(library) == {}


_CACHED_CALL = """
import sys
from skinretouch.kernels import _jit, ahead_of_time
ahead_of_time.jit_only()
ahead_of_time.fingerprint = lambda: sys.argv[1]  # the kernels' sources, as this process sees them
_jit.reflect_index(-3, 10)
stats = _jit.reflect_index.dispatcher.stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_an_edit_to_any_kernel_recompiles_every_cached_kernel(tmp_path):
    """numba keeps a cached kernel while its own file is unchanged, with the code of the kernels
    it calls as they were: the pipeline's batch fill ran an edited fill's old code, and so did
    the module ``skinretouch compile`` built. A kernel's cache holds only while every kernel
    source is unchanged (their fingerprint), each run a fresh process as a photo's is."""

    def run(sources: str) -> tuple[int, int]:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
        done = subprocess.run([sys.executable, "-c", _CACHED_CALL, sources], env=env, capture_output=True,
                              text=True, check=True, timeout=300)  # fmt: skip
        hits, misses = done.stdout.split()
        return int(hits), int(misses)

    assert run("sources-1") == (0, 1)  # compiled and cached
    assert run("sources-1") == (1, 0)  # loaded from the cache
    assert run("sources-2") == (0, 1)  # another kernel's source changed: compiled again
    assert run("sources-2") == (1, 0)
