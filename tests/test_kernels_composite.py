"""Feathered alpha inside the hole, and a composite that leaves everything else untouched."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import spot_cases

from skinretouch.kernels.composite import composite, feather_alpha
from skinretouch.kernels.removal import remove_freqsplit


@pytest.mark.parametrize("feather_px", [0, 1, 2, 4])
def test_alpha_is_zero_outside_and_ramps_to_one_inside(feather_px):
    hole = np.zeros((40, 40), bool)
    hole[8:30, 10:34] = True
    alpha = feather_alpha(hole, feather_px=feather_px)
    assert alpha.dtype == np.float32
    assert np.all(alpha[~hole] == 0.0)
    assert np.all((alpha[hole] > 0.0) & (alpha[hole] <= 1.0))
    deep = hole.copy()
    deep[: 8 + feather_px, :] = deep[30 - feather_px :, :] = False
    deep[:, : 10 + feather_px] = deep[:, 34 - feather_px :] = False
    assert np.all(alpha[deep] == 1.0)
    if feather_px:
        assert alpha[8, 20] < alpha[8 + feather_px, 20] <= 1.0


def test_hole_on_the_crop_border_feathers_from_the_border_too():
    hole = np.zeros((20, 20), bool)
    hole[:8, :8] = True
    alpha = feather_alpha(hole, feather_px=2)
    assert alpha[0, 0] < 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_composite_is_bit_identical_where_alpha_is_zero(dtype, order):
    case = spot_cases(1.0)[2]
    filled = remove_freqsplit(case.image, case.hole, avoid=case.avoid, scale=case.scale)
    alpha = feather_alpha(case.hole, feather_px=2)
    original = np.asarray(case.image, dtype=dtype, order=order)
    result = composite(original, np.asarray(filled, dtype=dtype, order=order), alpha)
    outside = alpha == 0
    assert np.array_equal(result[outside], original[outside].astype(np.float32))
    full = alpha == 1
    assert np.array_equal(result[full], filled[full])
    partial = (alpha > 0) & (alpha < 1)
    expected = original[partial] + alpha[partial, None] * (filled[partial] - original[partial])
    assert np.allclose(result[partial], expected, atol=1e-6)


def test_composite_checks_shapes():
    image = np.zeros((10, 10, 3), np.float32)
    with pytest.raises(ValueError):
        composite(image, np.zeros((10, 11, 3), np.float32), np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError):
        composite(image, image, np.zeros((10, 9), np.float32))
    with pytest.raises(ValueError):
        feather_alpha(np.zeros((4, 4), bool), feather_px=-1)
