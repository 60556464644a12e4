"""`skinretouch bench` on an install without the bench extra says what to install."""

from __future__ import annotations

import sys

import pytest

from skinretouch.cli import main


def _forget_the_benchmark(monkeypatch):
    for name in list(sys.modules):
        if name == "skinretouch.benchmark" or name.startswith("skinretouch.benchmark."):
            monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("missing", ["skimage", "skimage.color"])
def test_bench_without_the_bench_extra_names_the_extra(monkeypatch, capsys, missing):
    _forget_the_benchmark(monkeypatch)
    for name in list(sys.modules):  # a loaded submodule would be found without its parent
        if name.startswith(missing + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # as if scikit-image were not installed

    assert main(["bench", "--help"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'skinretouch[bench]'" in err
    assert "Traceback" not in err


def test_an_unrelated_missing_module_is_not_blamed_on_the_extra(monkeypatch):
    _forget_the_benchmark(monkeypatch)
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ModuleNotFoundError, match="cv2"):
        main(["bench", "--help"])
