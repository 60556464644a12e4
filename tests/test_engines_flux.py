"""FLUX.1 Fill through diffusers, with a tiny random pipeline saved to disk and loaded back
through the engine's real loading code (local files only, 2 steps on the CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch", reason="the neural extra (torch) is not installed")
pytest.importorskip("diffusers", reason="the neural extra (diffusers) is not installed")
pytest.importorskip("transformers", reason="the neural extra (transformers) is not installed")

from engines_tiny import make_tiny_flux, make_tiny_flux_lora  # noqa: E402

from skinretouch.config import EnginesConfig, FluxConfig  # noqa: E402
from skinretouch.engines.flux import FluxFillEngine  # noqa: E402
from skinretouch.engines.manager import EngineManager, choose_engine  # noqa: E402


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    return make_tiny_flux(tmp_path_factory.mktemp("flux") / "FLUX.1-Fill-tiny")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # any attempt to reach the hub fails loudly instead of downloading
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


def _crop():
    rng = np.random.default_rng(0)
    crop = rng.random((40, 56, 3), dtype=np.float32)
    hole = np.zeros((40, 56), bool)
    hole[14:26, 20:34] = True
    return crop, hole


def test_two_steps_end_to_end_fill_only_the_hole(tiny_flux):
    # the tiny model at a small working size: 40x56 crops are enlarged to a 64-px short side
    config = EnginesConfig(flux_model_dir=str(tiny_flux), flux_enabled=True, flux_steps=2, device="cpu",
                           flux=FluxConfig(working_min_side_px=64))  # fmt: skip
    ok, reason = FluxFillEngine.available(config)
    assert ok, reason
    assert "run by torch on cpu, 2 steps" in reason and "short side >= 64 px" in reason
    with EngineManager(config) as manager:
        assert choose_engine("hard", manager, config) == ("flux-fill", None)
        crop, hole = _crop()
        fill = manager.inpaint("flux-fill", crop, hole, seed=3)
        engine = manager.get("flux-fill")
        assert engine.steps == 2 and engine.padding_multiple() == 2  # tiny VAE: one level
        assert fill.dtype == np.float32 and fill.shape == crop.shape
        assert np.array_equal(fill[~hole], crop[~hole])  # the regenerated rest is discarded
        assert np.abs(fill[hole] - crop[hole]).mean() > 0.01
        again = manager.inpaint("flux-fill", crop, hole, seed=3)
        assert np.array_equal(again, fill)  # seeded: the same fill for the same region
    assert manager.loaded() == []


def test_lora_is_fused_and_its_step_count_used(tiny_flux, tmp_path):
    pytest.importorskip("peft", reason="peft (LoRA loading) is not installed")
    lora = make_tiny_flux_lora(tiny_flux, tmp_path / "lora")
    base = EnginesConfig(flux_model_dir=str(tiny_flux), flux_enabled=True, flux_steps=3, flux_lora_steps=2, device="cpu",
                         flux=FluxConfig(working_min_side_px=0))  # fmt: skip
    crop, hole = _crop()
    plain = FluxFillEngine(dataclasses.replace(base, flux_steps=2))
    with_lora = FluxFillEngine(dataclasses.replace(base, flux_lora=str(lora)))
    plain_fill = plain(crop, hole, seed=1)
    lora_fill = with_lora(crop, hole, seed=1)
    assert with_lora.steps == 2
    assert np.array_equal(lora_fill[~hole], crop[~hole])
    assert not np.allclose(lora_fill[hole], plain_fill[hole])  # the LoRA changed the model


def test_unavailable_reasons(tiny_flux, tmp_path):
    assert FluxFillEngine.available(EnginesConfig()) == (False, "no model configured (engines.flux_model_dir is empty)")
    ok, reason = FluxFillEngine.available(EnginesConfig(flux_model_dir=str(tmp_path)))
    assert not ok and "model_index.json missing" in reason
    ok, reason = FluxFillEngine.available(EnginesConfig(flux_model_dir=str(tiny_flux), flux_lora=str(tmp_path / "x.safetensors")))
    assert not ok and reason.startswith("no LoRA at")
    # no GPU here: with device "auto" FLUX is refused rather than run for minutes on a CPU
    from skinretouch.engines.runtime import cuda_available

    if not cuda_available():
        ok, reason = FluxFillEngine.available(EnginesConfig(flux_model_dir=str(tiny_flux)))
        assert not ok and reason.startswith("no GPU")
