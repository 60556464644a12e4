"""The small-spot removal on dark skin and on the test planting style: no ghost, texture kept.

Dark skin was where a fill stayed biased (the last attempt's fill came out dL +0.55 on dark
skin); the photos are the bench's dark-skin headshots that CI can fetch (PyPI wheels). Figures
use the bench's per-spot metric on per-spot crops with oracle masks (footprint + 1 px).
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import set_spot_cases, spot_figures, telea

from skinretouch.kernels.removal import remove_freqsplit

DARK = ("family_boy", "nba_brown")  # dev, dark skin


@pytest.fixture(scope="module")
def dark_cases():
    cases = set_spot_cases(DARK)
    if not cases:
        pytest.skip("dark-skin bench photos could not be fetched")
    return cases


def _pooled(results, cases):
    figures = [spot_figures(r, c) for r, c in zip(results, cases)]
    ratios = np.array([f["texture_ratio"] for f in figures])
    ratios = ratios[np.isfinite(ratios)]
    pooled = {key: float(np.mean([f[key] for f in figures])) for key in ("dE", "lf_dE", "dL", "da")}
    pooled["texture_ok"] = float(np.mean((ratios >= 0.7) & (ratios <= 1.3)))
    pooled["n_texture"] = int(ratios.size)
    return pooled


def test_dark_skin_fill_has_no_ghost_and_keeps_texture(dark_cases):
    ours = [remove_freqsplit(c.image, c.hole, avoid=c.avoid, scale=c.scale) for c in dark_cases]
    for case, result in zip(dark_cases, ours):
        assert np.array_equal(result[~case.hole], case.image[~case.hole])
    figures = _pooled(ours, dark_cases)
    theirs = _pooled([telea(c) for c in dark_cases], dark_cases)
    assert figures["n_texture"] >= 15
    # Measured (53 spots, 37 judged for texture): dL -0.25, da +0.08, lf_dE 1.05 (Telea 1.47,
    # dL -0.32), texture_ok 0.76 (Telea 0.19).
    assert abs(figures["dL"]) <= 0.3 and abs(figures["da"]) <= 0.15, figures
    assert figures["lf_dE"] <= 0.8 * theirs["lf_dE"], (figures, theirs)
    assert figures["texture_ok"] >= 0.7 and theirs["texture_ok"] < 0.3, (figures, theirs)
