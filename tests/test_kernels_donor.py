"""Donor texture search: sources are always clean skin, never the hole or avoided pixels."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import spot_cases

from skinretouch.kernels.donor import donor_high_pass, valid_sources
from skinretouch.kernels.freqsplit import high_pass
from skinretouch.kernels.texture import high_pass_lightness


def _texture(case):
    return high_pass_lightness(case.image, scale=case.scale)


def _assert_sources_clean(offsets, targets, hole, avoid, patch_radius):
    ys, xs = np.nonzero(targets)
    sy = ys + offsets[ys, xs, 0]
    sx = xs + offsets[ys, xs, 1]
    height, width = hole.shape
    assert np.all((sy >= 0) & (sy < height) & (sx >= 0) & (sx < width))
    excluded = hole | avoid
    for oy in range(-patch_radius, patch_radius + 1):
        for ox in range(-patch_radius, patch_radius + 1):
            py = np.clip(sy + oy, 0, height - 1)
            px = np.clip(sx + ox, 0, width - 1)
            assert not excluded[py, px].any()


@pytest.mark.parametrize("iterations", [0, 3])
def test_donors_never_come_from_the_hole_or_avoided_pixels(iterations):
    for case in spot_cases(1.0)[:8]:
        texture = _texture(case)
        # Protect a band next to the hole as well, as a mole or an eye would be.
        avoid = case.avoid.copy()
        ys, xs = np.nonzero(case.hole)
        avoid[ys.min() : ys.max() + 1, min(xs.max() + 2, avoid.shape[1] - 1) :][:, :6] = True
        avoid &= ~case.hole
        donor, offsets = donor_high_pass(texture, case.hole, avoid=avoid, radius=20,
                                         patch_radius=2, iterations=iterations, seed=1)  # fmt: skip
        _assert_sources_clean(offsets, case.hole, case.hole, avoid, 2)
        assert np.array_equal(donor[~case.hole], texture[~case.hole])


def test_fallback_without_a_clean_block_still_picks_clean_pixels():
    rng = np.random.default_rng(2)
    texture = rng.standard_normal((40, 40)).astype(np.float32)
    hole = np.zeros((40, 40), bool)
    hole[8:32, 8:32] = True  # no shift within the radius moves it wholly onto clean skin
    avoid = np.zeros_like(hole)
    avoid[:, 34:] = True
    donor, offsets = donor_high_pass(texture, hole, avoid=avoid, radius=6, patch_radius=1, seed=0)
    _assert_sources_clean(offsets, hole, hole, avoid, 1)


def test_block_offset_finds_a_planted_copy_of_the_surrounding_texture():
    rng = np.random.default_rng(5)
    texture = high_pass(rng.standard_normal((60, 60)).astype(np.float32), 2.0, order=2)
    hole = np.zeros((60, 60), bool)
    hole[25:33, 25:33] = True
    # The 16x16 block around the hole reappears 14 px to the right: the best match.
    texture[21:37, 35:51] = texture[21:37, 21:37]
    truth = texture.copy()
    texture[hole] = 0.0
    donor, offsets = donor_high_pass(texture, hole, radius=16, patch_radius=2, iterations=0)
    assert tuple(offsets[28, 28]) == (0, 14)
    assert np.allclose(donor[hole], truth[hole])


def test_guide_weight_makes_the_holes_own_texture_count():
    rng = np.random.default_rng(7)
    texture = high_pass(rng.standard_normal((60, 60)).astype(np.float32), 2.0, order=2)
    hole = np.zeros((60, 60), bool)
    hole[24:36, 24:36] = True
    texture[22:38, 40:56] = texture[22:38, 22:38]
    trusted = np.where(hole, 1.0, 0.0).astype(np.float32)
    _, offsets = donor_high_pass(texture, hole, guide_weight=trusted, radius=20, iterations=0)
    assert tuple(offsets[30, 30]) == (0, 18)


def test_same_seed_same_donors():
    case = spot_cases(1.0)[1]
    texture = _texture(case)
    runs = [
        donor_high_pass(texture, case.hole, avoid=case.avoid, iterations=3, seed=4)
        for _ in range(2)
    ]
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])


def test_valid_sources_keep_patches_off_excluded_pixels():
    excluded = np.zeros((20, 20), bool)
    excluded[10, 10] = True
    sources = valid_sources(excluded, 2)
    assert not sources[8:13, 8:13].any()
    assert sources[7, 7] and sources[13, 13]
    assert not sources[:2].any() and not sources[:, -2:].any()  # patches stay inside the crop
