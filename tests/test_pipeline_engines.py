"""Neural routes through the real pipeline: LaMa for medium regions, FLUX for hard ones,
and the classical fallbacks recorded in the report when an engine is missing or broken."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from skinretouch.cli import main
from skinretouch.config import Config
from skinretouch.engines.lama import LamaEngine
from skinretouch.engines.manager import INPAINT_ENGINES, EngineManager
from skinretouch.pipeline import Retoucher

torch = pytest.importorskip("torch", reason="neural extra not installed")


class TinyLamaEngine(LamaEngine):
    """The real LaMa engine and loader, on the tiny big-lama-layout generator."""

    def __init__(self, config, **kwargs):
        from engines_tiny import tiny_lama_spec

        super().__init__(config, spec=tiny_lama_spec())


@pytest.fixture(scope="module")
def skin() -> np.ndarray:
    """512x512 of real skin texture (the bench's grace_hopper face, tiled by mirroring)."""
    from skinretouch.benchmark.photos import load_bench_photos

    (photo,) = load_bench_photos(names=["grace_hopper"])
    face = photo.rgb[150:350, 200:400]
    tiled = np.concatenate([face, face[::-1]], axis=0)
    tiled = np.concatenate([tiled, tiled[:, ::-1]], axis=1)
    tiled = np.concatenate([tiled, tiled[:112]], axis=0)
    tiled = np.concatenate([tiled, tiled[:, :112]], axis=1)
    return np.ascontiguousarray(tiled[:512, :512])


@pytest.fixture(scope="module")
def tiny_flux(tmp_path_factory):
    pytest.importorskip("diffusers", reason="neural extra not installed")
    from engines_tiny import make_tiny_flux

    return make_tiny_flux(tmp_path_factory.mktemp("flux"))


def _square_mask(size, top, left, side):
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _regions_by_route(result):
    return {region.route: region for region in result.regions}


def test_medium_region_goes_to_lama_with_texture_reinjected(tmp_path, skin):
    from engines_tiny import tiny_lama

    weights = tmp_path / "tiny-lama.pt"
    torch.save(tiny_lama().state_dict(), weights)
    config = Config().replace("engines", lama_weights=str(weights), lama_backend="torch", device="cpu")
    table = dict(INPAINT_ENGINES, lama=f"{__name__}:TinyLamaEngine")
    image = skin.astype(np.float32) / 255
    mask = _square_mask(512, 200, 200, 40)  # 40 px across: past the small-spot route, not hard

    with Retoucher(config, engines=EngineManager(config.engines, table=table)) as retoucher:
        result = retoucher.retouch(image, mask=mask)
    (region,) = result.regions
    assert (region.route, region.engine, region.fallback_reason) == ("lama", "lama", None)
    assert not region.hard_case
    out = result.pixels
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.allclose(out[mask], image[mask])
    assert region.texture_ratio is not None and 0.5 < region.texture_ratio < 1.5


def test_without_weights_medium_and_hard_regions_fall_back_to_classical_with_reasons(skin):
    config = Config().replace("engines", flux_enabled=True)
    image = skin.astype(np.float32) / 255
    mask = _square_mask(512, 100, 100, 40) | _square_mask(512, 300, 300, 80)  # 80x80 = 2.4 %: hard
    with Retoucher(config) as retoucher:
        result = retoucher.retouch(image, mask=mask)
    medium, hard = sorted(result.regions, key=lambda r: r.area_px)
    assert medium.route in ("freqsplit", "patchmatch")
    assert "lama unavailable: no weights configured" in medium.fallback_reason
    assert hard.hard_case and "large_area" in hard.hard_reasons
    assert hard.route in ("patchmatch", "freqsplit")
    assert "flux-fill unavailable" in hard.fallback_reason and "lama unavailable" in hard.fallback_reason
    assert np.array_equal(result.pixels[~mask], image[~mask])


def test_broken_weights_fall_back_and_say_why(tmp_path, skin):
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    config = Config().replace("engines", lama_weights=str(weights), lama_backend="torch", device="cpu")
    image = skin.astype(np.float32) / 255
    with Retoucher(config) as retoucher:
        result = retoucher.retouch(image, mask=_square_mask(512, 200, 200, 40))
    (region,) = result.regions
    assert region.route in ("freqsplit", "patchmatch")
    # refused before loading: the file is no LaMa form, and the reason says what was expected
    assert region.fallback_reason.startswith("lama unavailable:")
    assert "expected a big-lama generator" in region.fallback_reason


def test_flux_runs_two_steps_on_a_hard_region_through_process(tmp_path, skin, tiny_flux):
    model = tiny_flux
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        "[engines]\n"
        f"flux_model_dir = '{model}'\n"
        "flux_enabled = true\n"
        "flux_steps = 2\n"
        "device = 'cpu'\n"
        "[engines.flux]\n"
        "working_min_side_px = 0\n"  # the tiny model at the crop's own size
        "[route]\n"
        "hard_area_fraction = 0.001\n"  # a small hard region keeps the tiny model's crop small
    )
    source = tmp_path / "face.png"
    Image.fromarray(skin).save(source)
    user_mask = _square_mask(512, 250, 250, 24)  # 0.22 % of the photo: hard under this config
    mask_file = tmp_path / "mask.png"
    Image.fromarray(user_mask.astype(np.uint8) * 255).save(mask_file)

    assert main(["process", str(source), "--mask", str(mask_file), "--config", str(config_file)]) == 0
    report = json.loads((tmp_path / "face.png.retouch.json").read_text())
    (region,) = report["regions"]
    assert (region["route"], region["engine"]) == ("flux", "flux-fill")
    assert region["hard_case"] and "large_area" in region["hard_reasons"]
    result = np.asarray(Image.open(tmp_path / "face.retouched.png"))
    assert np.array_equal(result[~user_mask], skin[~user_mask])
    assert not np.array_equal(result[user_mask], skin[user_mask])


def test_doctor_reports_each_engine_state(tmp_path, capsys, tiny_flux):
    model = tiny_flux
    config_file = tmp_path / "config.toml"
    config_file.write_text(f"[engines]\nflux_model_dir = '{model}'\ndevice = 'cpu'\nlama_weights = '/nowhere/big-lama.pt'\n")
    assert main(["doctor", "--config", str(config_file)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "unavailable" in lines["inpaint/lama"] and "/nowhere/big-lama.pt" in lines["inpaint/lama"]
    assert " available " in lines["inpaint/flux-fill"] and "flux_enabled" in lines["inpaint/flux-fill"]
    assert "unavailable" in lines["backend/tensorrt"]
    assert " available " in lines["removal/freqsplit-numba"]
