"""Low-frequency (tone) fills, measured against each other on spots planted on real skin.

The removal routes use the biharmonic fill because it measured best: these tests keep that
ranking true on the bench's portraits (tone layer = the clean crop's Gaussian low-pass, so
only the fill's own error counts), and check the fills on surfaces with known answers.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import spot_cases

from skinretouch.kernels.blur import gaussian
from skinretouch.kernels.color import rgb_to_lab
from skinretouch.kernels.lowfill import (
    biharmonic_fill,
    membrane_fill,
    ring_mask,
    ring_median_fill,
)

FILLS = {"biharmonic": biharmonic_fill, "membrane": membrane_fill, "ring_median": ring_median_fill}


@pytest.fixture(scope="module")
def tone_errors():
    """Mean CIE76 error inside the footprint of each fill of the clean low-pass layer."""
    errors = {name: [] for name in FILLS}
    for case in spot_cases(1.0):
        low = gaussian(rgb_to_lab(case.clean), 2.0 * case.scale)
        for name, fill in FILLS.items():
            filled = fill(low, case.hole)
            errors[name].append(np.linalg.norm(filled - low, axis=2)[case.footprint].mean())
    return {name: float(np.mean(values)) for name, values in errors.items()}


def test_biharmonic_is_the_best_tone_fill(tone_errors):
    assert tone_errors["biharmonic"] < tone_errors["membrane"] < tone_errors["ring_median"]
    assert tone_errors["biharmonic"] < 0.8 * tone_errors["membrane"]


def _disc(shape, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 <= radius**2


@pytest.mark.parametrize("fill", [biharmonic_fill, membrane_fill])
def test_planes_are_filled_exactly(fill):
    yy, xx = np.mgrid[:40, :44].astype(np.float32)
    plane = np.stack([50 + 0.3 * yy - 0.2 * xx, 10 + 0.1 * xx, -5 + 0 * yy], axis=-1)
    hole = _disc(plane.shape, 12)
    damaged = plane.copy()
    damaged[hole] = 99.0
    filled = fill(damaged, hole)
    assert np.abs(filled[hole] - plane[hole]).max() < 2e-3
    assert np.array_equal(filled[~hole], damaged[~hole])


def test_biharmonic_continues_a_curved_surface_better_than_the_membrane():
    yy, xx = np.mgrid[:48, :48].astype(np.float32)
    bowl = (0.02 * ((yy - 24) ** 2 + (xx - 24) ** 2))[:, :, None].astype(np.float32)
    hole = _disc(bowl.shape, 12)
    err = {name: np.abs(f(bowl, hole) - bowl)[hole].mean() for name, f in FILLS.items()}
    assert err["biharmonic"] < 0.3 * err["membrane"]


def test_ring_median_uses_only_the_ring_and_skips_excluded_pixels():
    values = np.zeros((30, 30, 1), np.float32)
    hole = _disc((30, 30), 6)
    ring = ring_mask(hole, 3)
    values[ring] = 7.0
    exclude = np.zeros_like(hole)
    exclude[:15] = True
    values[ring & exclude] = 100.0
    filled = ring_median_fill(values, hole, ring_px=3, exclude=exclude)
    assert np.all(filled[hole] == 7.0)
