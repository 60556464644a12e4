"""``skinretouch engines build``: ONNX export into the cache, backend check, TensorRT reason."""

from __future__ import annotations

import importlib.util

import pytest

from skinretouch.config import EnginesConfig
from skinretouch.engines.build import build_engines, run_build


def test_nothing_configured_is_skipped_not_failed(capsys):
    assert run_build(EnginesConfig(cache_dir="/nonexistent/cache")) == 0
    out = capsys.readouterr().out
    assert "lama/onnx" in out and "skipped: no weights configured" in out
    assert "flux-fill/-" in out


def test_build_exports_checks_and_reuses_the_cache(tmp_path):
    torch = pytest.importorskip("torch", reason="the neural extra (torch) is not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from engines_tiny import tiny_lama, tiny_lama_spec

    weights = tmp_path / "lama.pt"
    torch.save(tiny_lama(seed=8).state_dict(), weights)
    config = EnginesConfig(lama_weights=str(weights), cache_dir=str(tmp_path / "cache"), device="cpu")
    steps = {step.step: step for step in build_engines(config, spec=tiny_lama_spec())}
    assert steps["weights"].ok
    onnx_path = tmp_path / "cache" / steps["onnx"].detail.rsplit("/", 1)[-1]
    assert steps["onnx"].ok and onnx_path.is_file()
    check = steps["onnxruntime-check"]
    assert check.ok
    difference = float(check.detail.split("max abs diff vs torch ")[1].split()[0])
    assert difference < 1e-5
    if importlib.util.find_spec("tensorrt") is None:
        assert not steps["tensorrt"].ok and steps["tensorrt"].detail == "unavailable: tensorrt not installed"
    stamp = onnx_path.stat().st_mtime_ns
    build_engines(config, spec=tiny_lama_spec())
    assert onnx_path.stat().st_mtime_ns == stamp  # cached: not exported again
    build_engines(config, force=True, spec=tiny_lama_spec())
    assert onnx_path.is_file()


def test_wrong_weights_fail_the_build_with_the_reason(tmp_path):
    torch = pytest.importorskip("torch", reason="the neural extra (torch) is not installed")
    weights = tmp_path / "other.pt"
    torch.save({"some.weight": torch.zeros(1)}, weights)
    steps = build_engines(EnginesConfig(lama_weights=str(weights), cache_dir=str(tmp_path), device="cpu"))
    (failed,) = [s for s in steps if not s.ok]
    assert failed.step == "weights" and "expected a big-lama generator" in failed.detail
    assert "found a state-dict with tensors some.weight" in failed.detail
