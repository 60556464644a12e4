"""The bench's photos, planting and metrics behave as BENCHMARK.md defines them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from skinretouch.benchmark.metrics import (
    COLLATERAL_MARGIN_PX,
    detection_metrics,
    removal_metrics,
)
from skinretouch.benchmark.photos import DEFAULT_CACHE_DIR, load_bench_photos
from skinretouch.benchmark.planting import (
    BLEMISH_KINDS,
    FOOTPRINT_DE,
    SPOT_GAP_PX,
    oracle_mask,
    plant_spots,
)


@pytest.fixture(scope="module")
def portraits(bench_photos):
    return {name: bench_photos[name] for name in ("astronaut", "grace_hopper")}


@pytest.fixture(scope="module")
def grace(portraits):
    return portraits["grace_hopper"]


@pytest.fixture(scope="module")
def planted(grace):
    blemished, spots = plant_spots(grace, seed=3, n_spots=6, n_moles=1)
    return blemished, spots


@pytest.fixture(scope="module")
def textured():
    """The macro (real pores) when cached, else the aged portrait."""
    if (DEFAULT_CACHE_DIR / "dermapred_example_image.jpg").exists():
        photo = load_bench_photos(names=["dermapred"])[0]
    else:
        photo = load_bench_photos(names=["grace_hopper"])[0]
    blemished, spots = plant_spots(photo, seed=5, n_spots=10, kinds=["papule", "dark_spot"])
    return photo, blemished, spots


# --- photos -----------------------------------------------------------------------------------


def test_portrait_skin_regions_are_small_skin_coloured_areas(portraits):
    for photo in portraits.values():
        assert photo.skin.shape == photo.rgb.shape[:2]
        share = photo.skin.mean()
        assert 0.002 < share < 0.05, (photo.name, share)
        lab = rgb2lab(photo.rgb)
        hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))[photo.skin]
        assert np.all((hue > 15) & (hue < 90))
        assert photo.scale >= 1.0


def test_astronaut_skin_avoids_eyes_and_mouth(portraits):
    skin = portraits["astronaut"].skin
    assert not skin[95:105, 190:255].any()  # eyes and brows
    assert not skin[138:155, 205:255].any()  # smile


# --- planting ---------------------------------------------------------------------------------


def test_planting_is_deterministic_per_seed(grace):
    first, spots_a = plant_spots(grace, seed=11, n_spots=5)
    again, spots_b = plant_spots(grace, seed=11, n_spots=5)
    other, _ = plant_spots(grace, seed=12, n_spots=5)
    assert np.array_equal(first, again)
    assert [s.center for s in spots_a] == [s.center for s in spots_b]
    assert not np.array_equal(first, other)


def test_spots_lie_in_skin_apart_and_moles_are_kept(grace, planted):
    blemished, spots = planted
    assert blemished.dtype == np.float32 and blemished.shape == grace.rgb.shape
    assert 0.0 <= blemished.min() and blemished.max() <= 1.0
    assert {s.kind for s in spots if not s.keep} == set(BLEMISH_KINDS)
    assert [s.kind for s in spots if s.keep] == ["mole"]
    gap = int(SPOT_GAP_PX * grace.scale) - 1
    for i, spot in enumerate(spots):
        assert spot.keep == (spot.kind == "mole")
        assert spot.footprint.any() and spot.core.any()
        assert grace.skin[spot.footprint].all()
        assert spot.footprint[spot.core].all()
        grown = ndi.binary_dilation(spot.footprint, iterations=gap)
        for other in spots[i + 1 :]:
            assert not (grown & other.footprint).any()


def test_footprint_is_where_colour_changed_visibly(grace, planted):
    blemished, spots = planted
    de = np.linalg.norm(rgb2lab(blemished.astype(np.float64)) - rgb2lab(grace.rgb), axis=-1)
    union = np.zeros(de.shape, dtype=bool)
    for spot in spots:
        union |= spot.footprint
    assert np.all(de[union] > FOOTPRINT_DE)
    assert np.all(de[~union] <= FOOTPRINT_DE + 1e-6)
    far = ndi.distance_transform_edt(~union) > 1.5 * COLLATERAL_MARGIN_PX
    assert np.array_equal(blemished[far], (grace.rgb[far] / 255.0).astype(np.float32))


def test_oracle_mask_leaves_moles_and_grows_with_dilation(planted):
    blemished, spots = planted
    bare = oracle_mask(spots, blemished.shape, dilation_px=0)
    grown = oracle_mask(spots, blemished.shape, dilation_px=3)
    mole = next(s for s in spots if s.keep)
    assert not bare[mole.footprint].any()
    assert all(bare[s.footprint].all() for s in spots if not s.keep)
    assert grown.sum() > bare.sum() and grown[bare].all()


# --- removal metrics --------------------------------------------------------------------------


def test_identity_result_scores_perfectly(grace, planted):
    _, spots = planted
    metrics = removal_metrics(grace.rgb, grace.rgb, spots, scale=grace.scale)
    assert metrics["dE"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["lf_dE"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["collateral"] == 0.0
    assert metrics["texture_ratio_median"] == pytest.approx(1.0)
    assert metrics["texture_ok"] == 1.0


def test_untouched_input_scores_its_blemishes(grace, planted):
    blemished, spots = planted
    quantized = (blemished * 255.0 + 0.5).astype(np.uint8)
    metrics = removal_metrics(quantized, grace.rgb, spots, scale=grace.scale, blemished=quantized)
    assert metrics["dE"] > 3 * FOOTPRINT_DE
    assert metrics["input_dE"] == pytest.approx(metrics["dE"])
    assert metrics["collateral"] == 0.0
    assert metrics["moles_dE"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["n_spots"] == sum(not s.keep for s in spots)


def test_smooth_fill_loses_half_the_texture(textured):
    photo, _, spots = textured
    clean = photo.rgb.astype(np.float64) / 255.0
    sigma = photo.scale
    low = np.stack([ndi.gaussian_filter(clean[..., c], sigma) for c in range(3)], axis=-1)
    half_texture = low + 0.5 * (clean - low)
    union = oracle_mask(spots, clean.shape, dilation_px=0)
    result = np.where(union[..., None], half_texture, clean)
    metrics = removal_metrics(result, clean, spots, scale=photo.scale)
    assert metrics["n_texture_spots"] >= 5
    assert 0.4 < metrics["texture_ratio_median"] < 0.65
    assert metrics["texture_ok"] < 0.3
    assert metrics["dE"] < 2.0


def test_collateral_counts_far_changed_pixels(grace, planted):
    _, spots = planted
    result = grace.rgb.copy()
    result[:10, :10] = np.clip(result[:10, :10].astype(int) + 4, 0, 255).astype(np.uint8)
    result[300:310, :10] = np.clip(result[300:310, :10].astype(int) + 2, 0, 255)
    metrics = removal_metrics(result, grace.rgb, spots, scale=grace.scale)
    union = oracle_mask(spots, result.shape, dilation_px=0) | next(s for s in spots if s.keep).footprint
    far = ndi.distance_transform_edt(~union) > COLLATERAL_MARGIN_PX * grace.scale
    assert metrics["collateral"] == pytest.approx(100 / far.sum())


# --- detection metrics ------------------------------------------------------------------------


def test_oracle_mask_is_a_perfect_detection(planted):
    blemished, spots = planted
    metrics = detection_metrics(oracle_mask(spots, blemished.shape, dilation_px=2), spots)
    assert metrics["recall"] == 1.0
    assert metrics["false_regions"] == 0
    assert metrics["moles_hit"] == 0
    assert set(metrics["recall_per_kind"]) == set(BLEMISH_KINDS)


def test_recall_counts_spots_with_half_their_core_covered(planted):
    blemished, spots = planted
    removable = [s for s in spots if not s.keep]
    mask = np.zeros(blemished.shape[:2], dtype=bool)
    mask |= removable[0].core  # found
    ys, xs = np.nonzero(removable[1].core)
    mask[ys[: ys.size // 3], xs[: xs.size // 3]] = True  # a third of its core: missed
    mask[:3, :3] = True  # touches no spot
    metrics = detection_metrics(mask, spots)
    assert metrics["found"] == 1
    assert metrics["recall"] == pytest.approx(1 / len(removable))
    assert metrics["false_regions"] == 1
    assert metrics["false_regions_per_spot"] == pytest.approx(1 / len(removable))


def test_mask_over_a_mole_is_a_mole_hit(planted):
    blemished, spots = planted
    mole = next(s for s in spots if s.keep)
    mask = ndi.binary_dilation(mole.footprint, iterations=2)
    metrics = detection_metrics(mask, spots)
    assert metrics["moles_hit"] == 1
    assert metrics["false_regions"] == 0
    assert metrics["recall"] == 0.0


# --- peers and the run ------------------------------------------------------------------------


def test_smooth_peer_flattens_texture_and_patchmatch_keeps_it(textured):
    from skinretouch.benchmark.peers import available_peers, run_peer

    photo, blemished, spots = textured
    rgb8 = np.clip(np.rint(blemished * 255.0), 0, 255).astype(np.uint8)
    mask = oracle_mask(spots, rgb8.shape, dilation_px=1)
    untouched = removal_metrics(rgb8, photo.rgb, spots, scale=photo.scale)
    telea, _ = run_peer("telea", rgb8, mask)
    smooth = removal_metrics(telea, photo.rgb, spots, scale=photo.scale, blemished=rgb8)
    assert smooth["dE"] < 0.3 * untouched["dE"]
    assert smooth["texture_ratio_median"] < 0.7
    assert smooth["collateral"] == 0.0
    assert np.isnan(smooth["moles_dE"]) or smooth["moles_dE"] < 1e-3
    if "patchmatch" in available_peers():
        patched, _ = run_peer("patchmatch", rgb8, mask)
        textured_fill = removal_metrics(patched, photo.rgb, spots, scale=photo.scale)
        assert 0.7 < textured_fill["texture_ratio_median"] < 1.3
        assert textured_fill["texture_ratio_median"] > smooth["texture_ratio_median"] + 0.3


def test_quick_run_writes_table_and_json_without_the_project(tmp_path, monkeypatch, capsys):
    import json

    from skinretouch.benchmark import run

    monkeypatch.setattr(run._Project, "load", classmethod(lambda cls: cls(None, None, "off in test")))
    out = tmp_path / "bench.json"
    status = run.main(["--quick", "--no-speed", "--peers", "telea", "--out", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    methods = report["removal"]["methods"]
    assert set(methods) == {"input (untouched)", "telea"}
    assert methods["telea"]["dE"] < methods["input (untouched)"]["dE"]
    assert methods["telea"]["n_spots"] == methods["input (untouched)"]["n_spots"] > 0
    assert report["detection"] == {"available": False, "reason": "off in test"}
    printed = capsys.readouterr().out
    assert "project: unavailable (off in test)" in printed
    assert "telea" in printed and (tmp_path / "bench.txt").exists()


def test_macro_is_skipped_with_a_warning_when_pip_cannot_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip download fails at once, as offline
    with pytest.warns(UserWarning, match="dermapred"):
        photos = load_bench_photos(tmp_path, names=["dermapred", "astronaut"])
    assert [photo.name for photo in photos] == ["astronaut"]
    assert not list(tmp_path.glob("*.jpg"))


def test_macro_skin_leaves_out_its_real_moles_and_hairs():
    if not (DEFAULT_CACHE_DIR / "dermapred_example_image.jpg").exists():
        pytest.skip("dermapred macro not cached (needs pip download once)")
    from skinretouch.benchmark.photos import DERMAPRED_EXCLUDED

    photo = load_bench_photos(names=["dermapred"])[0]
    for y, x, radius in DERMAPRED_EXCLUDED:
        assert not photo.skin[y - radius // 2 : y + radius // 2, x - radius // 2 : x + radius // 2].any()
    lightness = rgb2lab(photo.rgb)[..., 0]
    darker = lightness < ndi.gaussian_filter(lightness, 8) - 8  # moles, hairs, the scratch
    assert photo.skin[darker].mean() < 0.05
    assert photo.skin.mean() > 0.6


def test_ring_ceiling_is_the_clean_rings_strength_over_the_footprints():
    """``ring_texture_ratio``: what a fill that copies the ring's texture strength exactly would
    score. On even grain it is about 1; where the skin under the spot is twice as grainy as
    around it, about 0.5 (no fill that learns from the ring can be in range there)."""
    from types import SimpleNamespace

    from skinretouch.benchmark.metrics import spot_removal_metrics

    rng = np.random.default_rng(0)
    grain = rng.normal(0.0, 0.02, (96, 96))
    yy, xx = np.mgrid[:96, :96]
    footprint = (yy - 48) ** 2 + (xx - 48) ** 2 <= 8**2
    spot = SimpleNamespace(kind="papule", center=(48.0, 48.0), footprint=footprint)
    for boost, expected in ((1.0, 1.0), (2.0, 0.5)):
        lightness = 0.6 + grain * np.where(footprint, boost, 1.0)
        clean = np.repeat(lightness[..., None], 3, axis=-1)
        figures = spot_removal_metrics(clean, clean, spot, scale=1.0, mask=footprint)
        assert figures["ring_texture_ratio"] == pytest.approx(expected, rel=0.15)
