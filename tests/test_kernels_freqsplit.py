"""Frequency split on real skin: the layers add up, and the texture band is where pores are."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import spot_cases
from skimage import data

from skinretouch.kernels.blur import (
    blur_into,
    blur_region_into,
    gaussian,
    gaussian_taps,
    masked_blur_into,
    masked_blur_region_into,
    masked_gaussian,
)
from skinretouch.kernels.color import rgb_to_lab
from skinretouch.kernels.freqsplit import high_pass, high_pass_into, high_pass_region_into, split_frequencies


@pytest.fixture(scope="module")
def skin_lab():
    return rgb_to_lab(data.astronaut()[80:200, 170:270].astype(np.float32) / 255.0)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5])
def test_layers_add_up_to_the_image(skin_lab, sigma):
    low, high = split_frequencies(skin_lab, sigma)
    assert low.dtype == high.dtype == np.float32
    assert np.abs(low + high - skin_lab).max() < 1e-4
    # The low layer is smoother, the high layer has no tone left.
    roughness = np.abs(np.diff(skin_lab[:, :, 0], axis=1)).mean()
    assert np.abs(np.diff(low[:, :, 0], axis=1)).mean() < roughness
    assert abs(float(high[:, :, 0].mean())) < 0.2


def test_high_pass_order_two_is_a_sharper_cut():
    """Against a smooth spot-like bump, order 2 at sigma 2 leaks less than order 1 at sigma 1.

    (The removal keeps a hole's own texture in this band, so less of the spot's rim leaking
    in is what lets its own pores be kept.)
    """
    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    bump = -12.0 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 4.0**2)).astype(np.float32)
    leak_order2 = np.abs(high_pass(bump, 2.0, order=2)).max()
    leak_order1_wide = np.abs(high_pass(bump, 2.0, order=1)).max()
    assert leak_order2 < leak_order1_wide


def test_texture_band_of_real_skin_survives_order_two(skin_lab):
    lightness = np.ascontiguousarray(skin_lab[:, :, 0])
    fine = high_pass(lightness, 1.0)
    band = high_pass(lightness, 2.0, order=2)
    # The texture layer carries most of the pore-scale detail the bench measures.
    assert np.corrcoef(fine.ravel(), band.ravel())[0, 1] > 0.8


def test_masked_gaussian_ignores_masked_pixels():
    case = spot_cases(1.0)[0]
    lab = rgb_to_lab(case.image)
    polluted = lab.copy()
    polluted[case.hole] = 1000.0
    clean = masked_gaussian(lab, ~case.hole, 1.5)
    assert np.allclose(masked_gaussian(polluted, ~case.hole, 1.5), clean, atol=1e-3)
    assert not np.allclose(gaussian(polluted, 1.5), gaussian(lab, 1.5), atol=1.0)


def test_zero_sigma_is_a_copy(skin_lab):
    out = gaussian(skin_lab, 0.0)
    assert np.array_equal(out, skin_lab) and out is not skin_lab
    with pytest.raises(ValueError):
        high_pass(skin_lab, 1.0, order=0)


@pytest.mark.parametrize("sigma", [0.7, 1.33, 2.66])
def test_jitted_blurs_match_the_opencv_ones_on_skin(sigma):
    case = spot_cases(1.0)[0]
    lab = rgb_to_lab(case.image)
    valid = ~case.hole
    taps = gaussian_taps(sigma)
    blurred = np.empty_like(lab)
    blur_into(lab, taps, blurred)
    masked = np.empty_like(lab)
    masked_blur_into(lab, valid, taps, masked)
    lightness = np.ascontiguousarray(lab[:, :, :1])
    sharp = np.empty_like(lightness)
    high_pass_into(lightness, taps, 2, sharp)
    # L*a*b* values reach ~100: float32 rounding of the sums is ~1e-5 of them.
    assert np.abs(blurred - gaussian(lab, sigma)).max() < 1e-3
    assert np.abs(masked - masked_gaussian(lab, valid, sigma)).max() < 1e-3
    assert np.abs(sharp[:, :, 0] - high_pass(lightness[:, :, 0], sigma, order=2)).max() < 1e-3


@pytest.mark.parametrize("trial", range(40))
def test_region_blurs_equal_the_whole_result_on_their_box(trial):
    # The removal kernels compute blurs only on the box a later step reads; the values
    # there must be those of the whole blur, bit for bit, up to the array's edges.
    rng = np.random.default_rng(trial)
    height, width = (int(v) for v in rng.integers(1, 48, 2))
    channels = int(rng.integers(1, 4))
    values = rng.random((height, width, channels)).astype(np.float32)
    valid = rng.random((height, width)) < 0.8
    taps = gaussian_taps(float(rng.choice([0.7, 1.0, 2.0, 2.66])))
    y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
    y1, x1 = int(rng.integers(y0 + 1, height + 1)), int(rng.integers(x0 + 1, width + 1))
    box = (slice(y0, y1), slice(x0, x1))

    whole, part = np.empty_like(values), np.empty((y1 - y0, x1 - x0, channels), np.float32)
    blur_into(values, taps, whole)
    blur_region_into(values, taps, y0, x0, part)
    assert np.array_equal(part, whole[box])

    order = int(rng.integers(1, 3))
    high_pass_into(values, taps, order, whole)
    high_pass_region_into(values, taps, order, y0, x0, part)
    assert np.array_equal(part, whole[box])

    masked_blur_into(values, valid, taps, whole)
    masked_blur_region_into(values, valid, taps, y0, x0, part)
    assert np.array_equal(part, whole[box])


def test_gaussian_taps_cache_stays_bounded_over_many_scales():
    """A long-running worker sees a continuous range of face scales: the taps cache must not grow with them."""
    from skinretouch.kernels.blur import _cached_taps
    from skinretouch.kernels.tuning import TAPS_CACHE_SIZE

    for k in range(3 * TAPS_CACHE_SIZE):
        gaussian_taps(0.5 + k * 1e-3)
    assert _cached_taps.cache_info().currsize <= TAPS_CACHE_SIZE
    taps = gaussian_taps(1.25)
    assert taps is gaussian_taps(1.25) and not taps.flags.writeable
    assert abs(float(taps.sum()) - 1.0) < 1e-5
