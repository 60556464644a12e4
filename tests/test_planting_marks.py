"""The dev planting style ``marks``: flat soft post-acne marks and sharp uniform moles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from skinretouch.benchmark.planting import SPOT_GAP_PX
from skinretouch.benchmark.planting_marks import BLEMISH_KINDS, SPOT_KINDS, oracle_mask, plant_spots
from skinretouch.benchmark.styles import planting_style


@pytest.fixture(scope="module")
def planted(bench_photos):
    """(photo, blemished, spots, Lab change) on two portraits, with two moles each."""
    out = []
    for name in ("astronaut", "grace_hopper"):
        photo = bench_photos[name]
        blemished, spots = plant_spots(photo, seed=4, n_moles=2)
        change = rgb2lab(blemished.astype(np.float64)) - rgb2lab(photo.rgb)
        out.append((photo, blemished, spots, change))
    return out


def test_style_is_registered():
    assert planting_style("marks").plant_spots is plant_spots


def test_footprints_cores_and_kinds(planted):
    kinds = [s.kind for _, _, spots, _ in planted for s in spots]
    assert set(kinds) == set(SPOT_KINDS), kinds
    for photo, _, spots, change in planted:
        seen = np.linalg.norm(change, axis=-1) > 2.0
        union = np.zeros(photo.skin.shape, dtype=bool)
        for spot in spots:
            assert spot.keep == (spot.kind == "mole")
            assert spot.footprint.any() and spot.core.any()
            assert not (spot.core & ~spot.footprint).any()
            assert not (spot.footprint & ~photo.skin).any()
            assert not (spot.footprint & ~seen).any()
            # Footprints stay apart by the gap (less one pixel of rounding).
            near = ndi.binary_dilation(spot.footprint, iterations=int(SPOT_GAP_PX * photo.scale) - 1)
            assert not (near & union).any()
            union |= spot.footprint
        assert not (seen & ~union).any()  # every visible change belongs to a spot
        oracle = oracle_mask(spots, photo.rgb.shape, dilation_px=0)
        assert not any((oracle & s.core).any() for s in spots if s.keep)


def test_deterministic_per_seed(bench_photos):
    photo = bench_photos["astronaut"]
    first, spots_a = plant_spots(photo, seed=9)
    again, spots_b = plant_spots(photo, seed=9)
    other, _ = plant_spots(photo, seed=10)
    assert np.array_equal(first, again)
    assert [(s.kind, s.center) for s in spots_a] == [(s.kind, s.center) for s in spots_b]
    assert not np.array_equal(first, other)


def _plateau(change, spot):
    """Share of the footprint within 80 % of the spot's peak change: ~1 for a uniform sharp spot."""
    delta = np.linalg.norm(change, axis=-1)[spot.footprint]
    return float((delta >= 0.8 * np.percentile(delta, 95)).mean())


def test_marks_are_flat_and_soft_moles_sharp_and_uniform(planted):
    marks, moles = [], []
    for _, _, spots, change in planted:
        for spot in spots:
            lightness = change[..., 0][spot.footprint]
            if spot.keep:
                moles.append(_plateau(change, spot))
                assert lightness.max() < 0.0  # darker all over
            else:
                marks.append(_plateau(change, spot))
                assert lightness.max() < 0.5  # no highlight: no bump shading
                assert np.abs(change[spot.footprint]).max() < 20.0  # faint to moderate
    assert max(marks) < 0.45 < 0.55 < min(moles), (marks, moles)


def test_unknown_kinds_are_refused(bench_photos):
    with pytest.raises(ValueError):
        plant_spots(bench_photos["astronaut"], seed=0, kinds=["papule"])


def test_detection_bench_takes_the_style_for_dev_only():
    from skinretouch.benchmark.detection import run_detection_bench

    with pytest.raises(ValueError, match="dev part only"):
        run_detection_bench(parts=("dev", "test"), dev_style="marks")
    with pytest.raises(ValueError, match="unknown planting style"):
        run_detection_bench(parts=("dev",), dev_style="no_such_style")
