"""The clustered planting style renders what it claims: kinds, colour shifts, clusters, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from skinretouch.benchmark import planting, planting_clustered
from skinretouch.benchmark.photos import BenchPhoto, load_bench_photos
from skinretouch.benchmark.planting_clustered import (
    BLEMISH_KINDS,
    FOOTPRINT_DE,
    LARGE_KINDS,
    plant_spots,
)


@pytest.fixture(scope="module")
def aged_skin():
    """A 640x640 part of the skin macro (real pores, lines and hairs): room for large clusters."""
    photo = load_bench_photos(names=["dermapred"])
    if not photo:
        pytest.skip("the dermapred macro could not be fetched")
    photo = photo[0]
    window = (slice(740, 1380), slice(60, 700))
    return BenchPhoto("dermapred_part", photo.rgb[window].copy(), photo.skin[window].copy(), photo.scale)


@pytest.fixture(scope="module")
def planted(aged_skin):
    return plant_spots(aged_skin, seed=4, n_spots=8)


def _mean_shift(blemished, clean_rgb, region):
    return (rgb2lab(blemished.astype(np.float64)) - rgb2lab(clean_rgb))[region].mean(axis=0)


def test_same_seed_same_image_and_spots_other_seed_differs(aged_skin, planted):
    again_image, again_spots = plant_spots(aged_skin, seed=4, n_spots=8)
    image, spots = planted
    assert np.array_equal(image, again_image)
    assert [s.kind for s in spots] == [s.kind for s in again_spots]
    assert all(np.array_equal(a.footprint, b.footprint) for a, b in zip(spots, again_spots))
    other, _ = plant_spots(aged_skin, seed=5, n_spots=8)
    assert not np.array_equal(image, other)


def test_every_kind_is_planted_inside_skin_and_apart(aged_skin, planted):
    image, spots = planted
    kinds = {s.kind for s in spots}
    assert set(BLEMISH_KINDS) <= kinds and "mole" in kinds
    assert all(s.keep == (s.kind == "mole") for s in spots)
    taken = np.zeros(aged_skin.skin.shape, bool)
    for spot in spots:
        assert aged_skin.skin[spot.footprint].all(), spot.kind
        assert not (taken & spot.footprint).any()
        assert (spot.core & ~spot.footprint).sum() == 0
        taken |= ndi.binary_dilation(spot.footprint, iterations=2)


def test_footprint_is_the_visible_change_and_nothing_else_changed(aged_skin, planted):
    image, spots = planted
    delta = np.linalg.norm(rgb2lab(image.astype(np.float64)) - rgb2lab(aged_skin.rgb), axis=-1)
    union = np.zeros(delta.shape, bool)
    for spot in spots:
        union |= spot.footprint
    assert np.array_equal(delta > FOOTPRINT_DE, union)
    clean = aged_skin.rgb.astype(np.float32) / np.float32(255.0)
    assert np.array_equal(image[~union], clean[~union])  # bit-identical off the spots


def test_clusters_are_one_connected_inflamed_region_of_several_lesions(aged_skin, planted):
    image, spots = planted
    clusters = [s for s in spots if s.kind == "cluster"]
    marks = [s for s in spots if s.kind in ("red_mark", "brown_mark", "blackhead")]
    assert clusters
    for cluster in clusters:
        assert ndi.label(cluster.footprint, structure=np.ones((3, 3)))[1] == 1
        assert cluster.footprint.sum() > 4 * max(m.footprint.sum() for m in marks)
        # The halo: most of the footprint is inflamed skin around the lesion bodies.
        assert cluster.footprint.sum() > 2 * cluster.core.sum()
        shift = _mean_shift(image, aged_skin.rgb, cluster.core)
        assert shift[1] > 8.0 and shift[0] < -3.0  # redder and darker lesions
        halo = cluster.footprint & ~ndi.binary_dilation(cluster.core, iterations=2)
        assert _mean_shift(image, aged_skin.rgb, halo)[1] > 2.0  # a red halo, not only the domes


def test_colour_shifts_of_each_kind(aged_skin):
    image, spots = plant_spots(aged_skin, seed=7, n_spots=10)
    by_kind = {}
    for spot in spots:
        by_kind.setdefault(spot.kind, []).append(_mean_shift(image, aged_skin.rgb, spot.core))
    for kind, shifts in by_kind.items():
        for d_l, d_a, d_b in shifts:
            if kind in LARGE_KINDS:
                assert d_a > 6.0 and d_l < 0.0, (kind, d_l, d_a, d_b)
            elif kind == "red_mark":  # redness, little darkening, no yellowing
                assert 3.0 < d_a < 15.0 and d_a > -d_l and d_b < 1.5, (kind, d_l, d_a, d_b)
            elif kind == "brown_mark":  # pigment: darker and yellower more than redder
                assert d_l < -3.0 and d_b > 1.5 and d_b > 0.5 * d_a, (kind, d_l, d_a, d_b)
            elif kind == "blackhead":
                assert d_l < -20.0, (kind, d_l)
            elif kind == "mole":
                assert d_l < -12.0 and d_b > 2.0, (kind, d_l, d_b)


def test_moles_are_sharp_uniform_and_two_to_ten_px(aged_skin):
    image, spots = plant_spots(aged_skin, seed=11, n_spots=5, n_moles=3)
    lightness = rgb2lab(image.astype(np.float64))[..., 0]
    moles = [s for s in spots if s.keep]
    assert len(moles) == 3
    for mole in moles:
        radius = np.sqrt(mole.footprint.sum() / np.pi) / aged_skin.scale  # px at face scale
        assert 1.5 <= radius <= 11.0
        assert lightness[mole.core].std() < 2.0  # uniform brown
        # Sharp edge: the footprint's outer ring is already most of the way to the mole's tone.
        rim = mole.footprint & ~ndi.binary_erosion(mole.footprint)
        clean_l = rgb2lab(aged_skin.rgb)[..., 0]
        depth = clean_l[mole.core].mean() - lightness[mole.core].mean()
        assert (clean_l[rim] - lightness[rim]).mean() > 0.3 * depth


def test_same_interface_as_the_dev_style(aged_skin):
    for style in (planting, planting_clustered):
        image, spots = style.plant_spots(aged_skin, seed=1, n_spots=3, n_moles=1)
        assert image.dtype == np.float32 and image.shape == aged_skin.rgb.shape
        mask = style.oracle_mask(spots, image.shape, dilation_px=1)
        assert mask.any() and not any((mask & s.core).any() for s in spots if s.keep)
    with pytest.raises(ValueError, match="kinds"):
        plant_spots(aged_skin, seed=0, kinds=["papule"])


def test_styles_are_picked_by_name():
    from skinretouch.benchmark.styles import planting_style

    assert planting_style("clustered") is planting_clustered
    assert planting_style("classic") is planting
    with pytest.raises(ValueError, match="unknown planting style"):
        planting_style("watercolour")
