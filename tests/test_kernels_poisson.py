"""Poisson blending against cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from skinretouch.kernels.poisson import poisson_blend, solve_poisson


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _quadratic(shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    base = 0.3 + 0.2 * ((yy - 20) ** 2 + 0.5 * (xx - 25) ** 2) / 900.0
    return np.stack([base, 0.8 * base, 0.6 * base + 0.1], axis=-1).astype(np.float32)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_clone_of_a_shifted_surface_is_that_surface_plus_the_shift(order, dtype):
    """Same Laplacian inside, boundary offset by a constant: the unique solution is src + c."""
    shape = (48, 56)
    src = _quadratic(shape)
    dst = src + np.float32(0.12)
    mask = _disc(shape, (24, 28), 13)
    result = poisson_blend(
        np.asarray(src, dtype=dtype, order=order),
        np.asarray(dst, dtype=dtype, order=order),
        np.asarray(mask, order=order),
        max_iter=5000,
        tol=1e-6,
    )
    assert result.dtype == np.float32
    assert np.abs(result[mask] - dst[mask]).max() < 2e-4
    assert np.array_equal(result[~mask], dst[~mask])


def test_normal_clone_drops_the_sources_tone_and_keeps_its_gradients():
    shape = (40, 40)
    rng = np.random.default_rng(0)
    texture = (0.05 * rng.standard_normal(shape)).astype(np.float32)
    dst = np.full(shape + (3,), 0.5, np.float32)
    src = np.repeat((0.2 + texture)[:, :, None], 3, axis=2)  # far darker, same texture
    mask = _disc(shape, (20, 20), 10)
    result = poisson_blend(src, dst, mask, max_iter=5000, tol=1e-6)
    inside = result[mask, 0]
    assert abs(float(inside.mean()) - 0.5) < 0.02  # the destination's tone
    # The source's texture survives (correlation with it), with a smooth correction.
    assert np.corrcoef(inside, texture[mask])[0, 1] > 0.9


def test_membrane_solution_of_a_plane_is_exact():
    yy, xx = np.mgrid[:30, :30].astype(np.float32)
    plane = np.stack([0.01 * yy + 0.02 * xx, 0.03 * xx, 0.5 + 0 * yy], axis=-1).astype(np.float32)
    values = plane.copy()
    mask = _disc((30, 30), (15, 15), 9)
    values[mask] = 0.0
    sweeps = solve_poisson(values, mask, None, max_iter=5000, tol=1e-6)
    assert 1 < sweeps < 5000
    assert np.abs(values[mask] - plane[mask]).max() < 1e-4


def test_mask_touching_the_crop_edge_uses_mirrored_neighbours():
    src = _quadratic((32, 32))
    dst = src + np.float32(0.05)
    mask = np.zeros((32, 32), bool)
    mask[:10, :12] = True  # touches the top-left corner
    result = poisson_blend(src, dst, mask, max_iter=5000, tol=1e-6)
    assert np.all(np.isfinite(result))
    assert np.abs(result[mask] - dst[mask]).max() < 0.01


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        poisson_blend(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), np.zeros((8, 9), bool))
    with pytest.raises(ValueError):
        poisson_blend(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.zeros((8, 7), bool))
