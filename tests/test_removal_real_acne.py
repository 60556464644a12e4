"""The real-acne removal bench's masks and judge (benchmark/removal_real_acne.py), on synthetic skin."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from skinretouch.benchmark.real_acne import Lesion
from skinretouch.benchmark.removal_real_acne import background_of, cluster_mask, judge_regions


def test_neighbouring_lesions_merge_into_one_cluster_and_far_ones_stay_apart():
    lesions = [Lesion((20, 20, 30, 30), "papule"), Lesion((34, 22, 42, 30), "pustule"),
               Lesion((80, 80, 88, 88), "papule")]  # fmt: skip
    mask, grown = cluster_mask(lesions, (120, 120))
    _, count = ndi.label(mask, structure=np.ones((3, 3)))
    assert count == 2
    assert (mask & ~grown).any() and not (grown & ~mask).any()  # the gap between the two is closed


def test_the_judge_sees_a_red_ghost_and_not_a_clean_fill():
    rng = np.random.default_rng(0)
    clean = np.clip(0.6 + 0.03 * rng.standard_normal((120, 120, 1)) + np.array([0.1, 0.0, -0.05]), 0, 1)
    lesions = [Lesion((50, 50, 66, 66), "papule")]
    mask, grown = cluster_mask(lesions, clean.shape[:2])
    ghost = clean.copy()
    ghost[mask] = np.clip(ghost[mask] * np.array([1.0, 0.9, 0.9]), 0, 1)  # redder and darker
    smooth = clean.copy()
    smooth[mask] = clean[~mask].mean(axis=0)
    background = background_of((clean * 255).astype(np.uint8))
    (as_clean,) = judge_regions(clean, mask, grown, background)
    (as_ghost,) = judge_regions(ghost, mask, grown, background)
    (as_smooth,) = judge_regions(smooth, mask, grown, background)
    assert abs(as_clean["da"]) < 0.3 and abs(as_clean["dL"]) < 0.3 and 0.85 < as_clean["texture_ratio"] < 1.15
    assert as_ghost["da"] > 2.0 and as_ghost["dL"] < -2.0 and as_ghost["lf_dE"] > as_clean["lf_dE"] + 2.0
    assert as_smooth["texture_ratio"] < 0.1
