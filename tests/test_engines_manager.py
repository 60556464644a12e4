"""Engine base, manager, routing fallbacks and backend selection, with fake engines (no torch)."""

from __future__ import annotations

import importlib.util
from typing import ClassVar

import numpy as np
import pytest

from skinretouch.config import EnginesConfig
from skinretouch.engines import runtime
from skinretouch.engines.inpaint_base import EngineError, EngineUnavailable, InpaintEngine, pad_to_multiple
from skinretouch.engines.lama import LamaEngine
from skinretouch.engines.manager import CLASSICAL, EngineManager, choose_engine
from skinretouch.engines.runtime import ShapeProfile, TensorRTBackend, resolve_backend, tensorrt_cache_key

EVENTS: list[str] = []


class FakeEngine(InpaintEngine):
    """Fills the hole with a flat colour; records what it is given."""

    name = "fake"
    pad_mod = 8
    max_side_px = 128
    colour: ClassVar[float] = 0.25
    fail_load: ClassVar[bool] = False
    shapes: ClassVar[list[tuple[int, ...]]] = []

    @classmethod
    def available(cls, config):
        return True, "always"

    def load(self):
        EVENTS.append(f"load {self.name}")
        if self.fail_load:
            raise RuntimeError("out of memory")

    def unload(self):
        EVENTS.append(f"unload {self.name}")
        super().unload()

    def forward(self, image, hole, *, seed):
        type(self).shapes.append(image.shape)
        out = image.copy()
        out[hole] = self.colour
        return out


class HeavyA(FakeEngine):
    name = "heavy-a"
    heavy = True


class HeavyB(FakeEngine):
    name = "heavy-b"
    heavy = True


class Light(FakeEngine):
    name = "light"


TABLE = {cls.name: f"{__name__}:{cls.__name__}" for cls in (FakeEngine, HeavyA, HeavyB, Light)}


@pytest.fixture(autouse=True)
def _reset():
    EVENTS.clear()
    FakeEngine.shapes = []
    HeavyB.fail_load = False
    yield


def _crop(height=50, width=70):
    crop = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    hole = np.zeros((height, width), bool)
    hole[20:30, 30:45] = True
    return crop, hole


# --- the base class ---------------------------------------------------------------------


def test_call_pads_to_the_multiple_and_keeps_outside_pixels_bit_identical():
    engine = FakeEngine(EnginesConfig())
    crop, hole = _crop()
    fill = engine(crop, hole)
    (shape,) = FakeEngine.shapes
    assert shape[0] % 8 == 0 and shape[1] % 8 == 0
    assert np.array_equal(fill[~hole], crop[~hole])
    assert np.all(fill[hole] == np.float32(0.25))


class SmallWorkingSize(FakeEngine):
    max_side_px = 64


def test_call_crops_to_the_hole_with_context_and_downscales_large_crops():
    engine = SmallWorkingSize(EnginesConfig())
    crop = np.random.default_rng(1).random((400, 600, 3), dtype=np.float32)
    hole = np.zeros((400, 600), bool)
    hole[180:200, 290:330] = True  # 40 px wide: 40 px context each side -> 120 x 100 crop
    fill = engine(crop, hole)
    (shape,) = FakeEngine.shapes
    assert max(shape[:2]) <= 64  # downscaled to the working size, then padded
    assert np.array_equal(fill[~hole], crop[~hole])
    # the upscaled prediction still fills the whole hole
    assert np.allclose(fill[hole], 0.25, atol=1e-6)
    assert FakeEngine.crop_margin(40, 20) == 40 and FakeEngine.crop_margin(4, 4) == 32


def test_empty_hole_and_bad_inputs():
    engine = FakeEngine(EnginesConfig())
    crop, hole = _crop()
    assert np.array_equal(engine(crop, np.zeros_like(hole)), crop)
    assert EVENTS == []  # nothing to fill: nothing loaded
    with pytest.raises(ValueError):
        engine(crop[..., :2], hole)
    with pytest.raises(ValueError):
        engine(crop, hole[:-1])
    with pytest.raises(TypeError):
        engine((crop * 255).astype(np.uint8), hole)


@pytest.mark.parametrize("size", [(1, 1), (3, 9), (8, 16), (13, 5)])
def test_pad_to_multiple_mirrors_and_keeps_the_original(size):
    image = np.arange(size[0] * size[1], dtype=np.float32).reshape(size)
    padded = pad_to_multiple(image, 8)
    assert padded.shape[0] % 8 == 0 and padded.shape[1] % 8 == 0
    assert np.array_equal(padded[: size[0], : size[1]], image)


def test_engine_classes_must_implement_the_interface():
    class Incomplete(InpaintEngine):
        name = "incomplete"

    with pytest.raises(TypeError):
        Incomplete(EnginesConfig())


# --- the manager ------------------------------------------------------------------------


def test_engines_load_once_and_stay_warm():
    manager = EngineManager(EnginesConfig(), table=TABLE)
    crop, hole = _crop()
    for _ in range(3):
        manager.inpaint("light", crop, hole)
    assert EVENTS == ["load light"]
    assert manager.loaded() == ["light"]
    manager.close()
    assert EVENTS == ["load light", "unload light"] and manager.loaded() == []


def test_heavy_engines_swap_and_light_ones_stay():
    manager = EngineManager(EnginesConfig(), table=TABLE)
    manager.get("light")
    manager.get("heavy-a")
    manager.get("heavy-b")
    assert EVENTS == ["load light", "load heavy-a", "unload heavy-a", "load heavy-b"]
    assert sorted(manager.loaded()) == ["heavy-b", "light"]


def test_failed_load_rolls_back_reraises_and_marks_the_engine_unavailable():
    HeavyB.fail_load = True
    manager = EngineManager(EnginesConfig(), table=TABLE)
    manager.get("heavy-a")
    with pytest.raises(EngineError, match="out of memory"):
        manager.get("heavy-b")
    # heavy-a was freed for heavy-b, and is loaded again after heavy-b failed
    assert EVENTS == ["load heavy-a", "unload heavy-a", "load heavy-b", "unload heavy-b", "load heavy-a"]
    assert manager.loaded() == ["heavy-a"]
    ok, reason = manager.available("heavy-b")
    assert not ok and reason == "failed to load: out of memory"
    with pytest.raises(EngineUnavailable):
        manager.get("heavy-b")
    HeavyB.fail_load = False
    manager.refresh()  # e.g. memory was freed elsewhere, or weights were fixed
    manager.get("heavy-b")
    assert manager.loaded() == ["heavy-b"]


def test_unknown_engine_is_unavailable_not_a_crash():
    manager = EngineManager(EnginesConfig(), table=TABLE)
    ok, reason = manager.available("nope")
    assert not ok and "unknown inpaint engine 'nope'" in reason


# --- routing ----------------------------------------------------------------------------


def _manager(config, lama_ok: bool, flux_ok: bool) -> EngineManager:
    manager = EngineManager(config)
    manager._availability["lama"] = (True, "ok") if lama_ok else (False, "no weights configured (engines.lama_weights is empty)")
    manager._availability["flux-fill"] = (True, "ok") if flux_ok else (False, "no GPU")
    return manager


@pytest.mark.parametrize(
    ("route", "flux_enabled", "lama_ok", "flux_ok", "expected_engine", "reason_parts"),
    [
        ("medium", False, True, True, "lama", None),
        ("medium", True, False, True, CLASSICAL, ["lama unavailable: no weights configured"]),
        ("hard", True, True, True, "flux-fill", None),
        ("hard", False, True, True, "lama", ["flux-fill not enabled"]),
        ("hard", True, True, False, "lama", ["flux-fill unavailable: no GPU"]),
        ("hard", True, False, False, CLASSICAL, ["flux-fill unavailable: no GPU", "lama unavailable"]),
        ("hard", False, False, True, CLASSICAL, ["flux-fill not enabled", "lama unavailable"]),
        ("small", True, True, True, CLASSICAL, None),
    ],
)
def test_routing_falls_back_as_configured(route, flux_enabled, lama_ok, flux_ok, expected_engine, reason_parts):
    config = EnginesConfig(flux_enabled=flux_enabled)
    engine, reason = choose_engine(route, _manager(config, lama_ok, flux_ok), config)
    assert engine == expected_engine
    if reason_parts is None:
        assert reason is None
    else:
        for part in reason_parts:
            assert part in reason


def test_routing_with_real_availability_and_missing_weights(tmp_path):
    config = EnginesConfig(lama_weights=str(tmp_path / "big-lama.ckpt"), flux_model_dir=str(tmp_path / "flux"), flux_enabled=True)
    engine, reason = choose_engine("hard", EngineManager(config), config)
    assert engine == CLASSICAL
    assert "flux-fill unavailable: no FLUX.1 Fill model at" in reason
    assert f"lama unavailable: no weights at {tmp_path / 'big-lama.ckpt'}" in reason


# --- availability reasons (what doctor prints) ------------------------------------------


def test_lama_availability_reasons(tmp_path, monkeypatch):
    assert LamaEngine.available(EnginesConfig()) == (False, "no weights configured (engines.lama_weights is empty)")
    absent = tmp_path / "none.ckpt"
    assert LamaEngine.available(EnginesConfig(lama_weights=str(absent))) == (
        False,
        f"no weights at {absent} (engines.lama_weights)",
    )
    weights = tmp_path / "big-lama.ckpt"
    weights.write_bytes(b"not read by available()")
    monkeypatch.setattr("skinretouch.engines.lama.missing_packages", lambda *names: ["torch"])
    ok, reason = LamaEngine.available(EnginesConfig(lama_weights=str(weights)))
    assert not ok and reason.startswith("package missing: torch")
    monkeypatch.undo()
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.save({}, weights)  # a torch container: available() reads its form, not its tensors
        ok, reason = LamaEngine.available(EnginesConfig(lama_weights=str(weights), device="cpu"))
        assert ok and reason.startswith(f"state-dict at {weights}")
    if importlib.util.find_spec("torch") is not None and importlib.util.find_spec("tensorrt") is None:
        ok, reason = LamaEngine.available(EnginesConfig(lama_weights=str(weights), lama_backend="tensorrt", device="cpu"))
        assert not ok and reason == "backend tensorrt: unavailable: tensorrt not installed"
    if importlib.util.find_spec("torch") is not None:
        ok, reason = LamaEngine.available(EnginesConfig(lama_weights=str(weights), lama_backend="auto", device="cpu"))
        assert ok and "run by torch on cpu" in reason


# --- backends ---------------------------------------------------------------------------


def test_tensorrt_is_unavailable_with_a_clear_reason_when_not_installed():
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    assert TensorRTBackend.available("cuda") == (False, "unavailable: tensorrt not installed")
    with pytest.raises(EngineUnavailable, match="tensorrt not installed"):
        resolve_backend("tensorrt", "cuda")


def test_auto_backend_prefers_torch_on_cpu_and_says_what_it_skipped(monkeypatch):
    states = {"tensorrt": (False, "unavailable: tensorrt not installed"), "torch": (True, "ok"), "onnxruntime": (True, "ok")}
    monkeypatch.setattr(runtime, "backend_available", lambda name, device: states[name])
    assert resolve_backend("auto", "cpu") == ("torch", None)
    assert resolve_backend("auto", "cuda") == ("torch", "tensorrt unavailable: tensorrt not installed")
    states["torch"] = (False, "unavailable: torch not installed")
    assert resolve_backend("auto", "cpu")[0] == "onnxruntime"
    states["onnxruntime"] = (False, "unavailable: onnxruntime not installed")
    with pytest.raises(EngineUnavailable, match="no backend can run"):
        resolve_backend("auto", "cpu")


def test_tensorrt_cache_key_changes_with_model_gpu_version_profile_and_precision():
    profile = ShapeProfile((("image", (1, 3, 32, 32), (1, 3, 512, 512), (1, 3, 512, 512)),))
    base = dict(model_sha256="ab" * 32, gpu_name="NVIDIA H100 80GB HBM3", tensorrt_version="10.3.0", profile=profile, fp16=False)
    key = tensorrt_cache_key(**base)
    assert key == tensorrt_cache_key(**base)  # stable
    assert key.startswith("abababababab-nvidia-h100-80gb-hbm3-trt10.3.0-") and key.endswith(".engine")
    other_profile = ShapeProfile((("image", (1, 3, 32, 32), (1, 3, 512, 512), (1, 3, 1024, 1024)),))
    variants = [
        {"model_sha256": "cd" * 32},
        {"gpu_name": "NVIDIA H200"},
        {"tensorrt_version": "10.4.0"},
        {"profile": other_profile},
        {"fp16": True},
    ]
    keys = {tensorrt_cache_key(**{**base, **change}) for change in variants}
    assert len(keys) == len(variants) and key not in keys


def test_file_sha256_and_cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"abc")
    assert runtime.file_sha256(path, chunk_bytes=2) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runtime.default_cache_dir("") == tmp_path / "skinretouch" / "engines"
    assert runtime.default_cache_dir(str(tmp_path / "c")) == tmp_path / "c"


def test_doctor_rows_list_every_engine_and_backend_with_a_reason(tmp_path):
    from skinretouch.engines.manager import doctor_rows

    rows = {(group, name): (ok, reason) for group, name, ok, reason in doctor_rows(EnginesConfig(lama_weights=str(tmp_path / "x.ckpt")))}
    assert set(rows) == {
        ("inpaint", "lama"),
        ("inpaint", "flux-fill"),
        ("backend", "torch"),
        ("backend", "onnxruntime"),
        ("backend", "tensorrt"),
    }
    assert rows["inpaint", "lama"] == (False, f"no weights at {tmp_path / 'x.ckpt'} (engines.lama_weights)")
    assert rows["inpaint", "flux-fill"] == (False, "no model configured (engines.flux_model_dir is empty)")
    if importlib.util.find_spec("tensorrt") is None:
        assert rows["backend", "tensorrt"] == (False, "unavailable: tensorrt not installed")
    if importlib.util.find_spec("torch") is None:
        assert rows["backend", "torch"][1].startswith("unavailable: torch not installed")
