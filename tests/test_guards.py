"""The conftest guards fail a test that leaks a thread or emits an unexpected warning."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


def test_a_leaked_thread_and_an_unexpected_warning_each_fail_their_test(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_sample='''
import threading
import warnings

STOP = threading.Event()


def test_leaks_a_thread():
    threading.Thread(target=STOP.wait, name="leaky", daemon=True).start()


def test_warns():
    warnings.warn("something the test did not expect", UserWarning)


def test_expected_warning_is_fine():
    import pytest
    with pytest.warns(UserWarning):
        warnings.warn("expected", UserWarning)


def test_clean():
    STOP.set()
'''
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(["*threads still running after the test:*leaky*"])
    result.stdout.fnmatch_lines(["*unexpected warnings:*", "*UserWarning: something the test did not expect*"])
