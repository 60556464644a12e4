"""Texture ratio (the hard-case flag) on real skin: ~1 for real texture, low for smooth fills."""

from __future__ import annotations

import numpy as np
from kernel_cases import spot_cases, telea

from skinretouch.kernels.removal import remove_freqsplit
from skinretouch.kernels.texture import texture_ratio


def test_untouched_clean_skin_scores_about_one():
    ratios = [texture_ratio(c.clean, c.hole, scale=c.scale, avoid=c.avoid) for c in spot_cases(1.0)]
    assert 0.8 <= float(np.median(ratios)) <= 1.25


def test_a_smooth_fill_scores_low_and_ours_scores_in_band():
    cases = [c for c in spot_cases(1.0) if c.hole.sum() >= 60]
    smooth = [texture_ratio(telea(c), c.hole, scale=c.scale, avoid=c.avoid) for c in cases]
    ours = [
        texture_ratio(remove_freqsplit(c.image, c.hole, avoid=c.avoid, scale=c.scale), c.hole,
                      scale=c.scale, avoid=c.avoid)  # fmt: skip
        for c in cases
    ]
    assert float(np.median(smooth)) < 0.65
    assert 0.75 <= float(np.median(ours)) <= 1.3


def test_empty_hole_is_nan():
    case = spot_cases(1.0)[0]
    assert np.isnan(texture_ratio(case.image, np.zeros_like(case.hole)))
