"""The multigrid-preconditioned membrane solver (kernels/_multigrid.py) behind large tone fills.

A hole hundreds of px across (a spot on a 100-megapixel photo) took plain SOR a thousand
sweeps; the solver must reach the same solution, closer, in a few dozen sweeps' worth of work.
"""

from __future__ import annotations

import numpy as np
import pytest

from skinretouch.kernels._jit import sor_sweeps
from skinretouch.kernels._multigrid import screened_membrane_multigrid
from skinretouch.kernels.labels import mask_box, mask_pixels
from skinretouch.kernels.tone import MULTIGRID_MIN_EXTENT, tone_fill


def _textured_field(size: int, seed: int) -> np.ndarray:
    """Smooth shading plus fine noise: the boundary a real tone residual gives the solver."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    shading = 8.0 * (xx - 0.5) ** 2 - 5.0 * yy * xx + 3.0 * np.sin(6.0 * yy)
    field = shading[..., None] + rng.normal(0.0, 1.0, (size, size, 3)).astype(np.float32)
    return np.ascontiguousarray(field, dtype=np.float32)


def _blob(size: int, radius: float, seed: int) -> np.ndarray:
    """An irregular hole (a disc with a wavy rim and a clean island inside)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = np.arctan2(yy - size / 2, xx - size / 2)
    distance = np.hypot(yy - size / 2, xx - size / 2)
    rim = radius * (1.0 + 0.15 * np.sin(5 * angle + seed))
    island = np.hypot(yy - size / 2 - radius / 3, xx - size / 2) < radius / 8
    return (distance < rim) & ~island


def _converged(values: np.ndarray, hole: np.ndarray, screen: float) -> np.ndarray:
    reference = values.copy()
    ys, xs = mask_pixels(hole)
    box = mask_box(hole)
    extent = max(box[1] - box[0], box[3] - box[2]) + 2
    sor_sweeps(reference, ys, xs, reference, False, 2.0 / (1.0 + np.sin(np.pi / extent)), 20000, 1e-6, screen)
    return reference


@pytest.mark.parametrize("screen", [0.0, 1.0 / 400.0])
def test_multigrid_reaches_the_converged_membrane_closer_than_the_old_sweeps(screen):
    field = _textured_field(360, seed=1)
    hole = _blob(360, 140.0, seed=1)
    start = field.copy()
    start[hole] = 0.0
    reference = _converged(start, hole, screen)

    solved = start.copy()
    iterations = screened_membrane_multigrid(solved, hole, mask_box(hole), screen, 1e-3)

    # What the tone fill did before: sweeps from zero until none moves a value by 1e-3.
    ys, xs = mask_pixels(hole)
    box = mask_box(hole)
    extent = max(box[1] - box[0], box[3] - box[2]) + 2
    swept = start.copy()
    sweeps = sor_sweeps(swept, ys, xs, swept, False, 2.0 / (1.0 + np.sin(np.pi / extent)), 4 * extent + 50, 1e-3,
                        screen)  # fmt: skip
    error = np.abs(solved - reference)[hole].max()
    swept_error = np.abs(swept - reference)[hole].max()
    # Measured: 7-9 iterations (about 6 sweeps' work each) against ~400 sweeps; max error
    # 0.8-2e-4 against 1-2e-3 L* units.
    assert 0 < iterations <= 20, iterations
    assert sweeps > 10 * iterations
    assert error <= 2e-3 and error <= swept_error, (error, swept_error)
    assert np.array_equal(solved[~hole], start[~hole])  # only the hole moves


def test_a_hole_at_the_arrays_edge_is_left_to_the_sweeps():
    field = _textured_field(120, seed=2)
    hole = np.zeros((120, 120), bool)
    hole[0:60, 20:90] = True
    before = field.copy()
    assert screened_membrane_multigrid(field, hole, mask_box(hole), 0.0, 1e-3) == -1
    assert np.array_equal(field, before)


def test_a_large_tone_fill_continues_the_shading_it_did_before():
    """tone_fill over a hole past MULTIGRID_MIN_EXTENT: the same tone as converged sweeps."""
    size = 4 * MULTIGRID_MIN_EXTENT
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    lab = np.stack([60.0 + 10.0 * xx - 6.0 * yy * yy, 14.0 + 3.0 * yy, 16.0 - 2.0 * xx], axis=-1).astype(np.float32)
    lab += np.random.default_rng(3).normal(0.0, 0.8, lab.shape).astype(np.float32)
    hole = _blob(size, 1.1 * MULTIGRID_MIN_EXTENT, seed=3)
    blemished = lab.copy()
    blemished[hole] -= np.float32(15.0)
    tone = tone_fill(blemished, hole, scale=4.0)
    # The hidden skin's shading (its noise-free part) is met within a fraction of an L* unit.
    clean = np.stack([60.0 + 10.0 * xx - 6.0 * yy * yy, 14.0 + 3.0 * yy, 16.0 - 2.0 * xx], axis=-1)
    error = np.abs(tone - clean)[hole].mean(axis=0)
    assert np.all(error < 0.6), error
