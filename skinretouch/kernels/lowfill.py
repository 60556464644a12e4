"""Smooth fills of a hole's low-frequency layer from the skin around it.

Three fills, measured against each other on planted spots (``tests/test_kernels_lowfill.py``;
figures on the bench photos, oracle masks, tone layer = Gaussian sigma 1 px):

- :func:`biharmonic_fill`: minimises the squared Laplacian over the hole, so the fill meets
  the ring with matching value AND slope; it continues shading and broad creases across
  the hole. Best on every figure (lf_dE 1.06 vs 1.53 for the membrane, 1.75 for Telea);
  the removal routes use it.
- :func:`membrane_fill`: the harmonic (Laplace) interpolation of the boundary values; it
  matches values only, so it flattens towards the boundary's mean (a visible dip or bump
  when the skin's shading curves across the hole).
- :func:`ring_median_fill`: the per-channel median of a ring around the hole, a constant;
  the seed recipe's baseline, with a step wherever the skin's tone slopes.
"""

from __future__ import annotations

import numpy as np

from ._jit import mirror101, sor_sweeps
from .ahead_of_time import njit
from .labels import mask_pixels

__all__ = [
    "biharmonic_fill",
    "biharmonic_into",
    "membrane_fill",
    "membrane_into",
    "ring_into",
    "ring_mask",
    "ring_median_fill",
]


def ring_mask(hole: np.ndarray, width_px: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Pixels within ``width_px`` (chessboard distance) outside ``hole``, minus ``exclude``.

    Parameters
    ----------
    hole : (H, W) bool ndarray
    width_px : int
        Ring width in pixels (>= 1).
    exclude : (H, W) bool ndarray or None
        Pixels left out of the ring (other spots, protected features).

    Returns
    -------
    (H, W) bool ndarray
    """
    hole = np.ascontiguousarray(hole, dtype=bool)
    exclude = np.zeros(hole.shape, bool) if exclude is None else np.ascontiguousarray(exclude, dtype=bool)
    ring = np.empty(hole.shape, bool)
    ring_into(hole, max(1, int(width_px)), exclude, ring)
    return ring


@njit(cache=True, nogil=True)
def ring_into(hole, width_px, exclude, out):
    """:func:`ring_mask` into ``out``; returns how many pixels the ring has."""
    height, width = hole.shape
    across = np.zeros((height, width), np.bool_)
    for y in range(height):
        last = -(width_px + 1)  # the nearest hole pixel at or left of x
        for x in range(width):
            if hole[y, x]:
                last = x
            across[y, x] = x - last <= width_px
        last = width + width_px + 1  # ... and right of x
        for x in range(width - 1, -1, -1):
            if hole[y, x]:
                last = x
            across[y, x] |= last - x <= width_px
    count = 0
    for x in range(width):
        last = -(width_px + 1)
        for y in range(height):
            if across[y, x]:
                last = y
            out[y, x] = y - last <= width_px
        last = height + width_px + 1
        for y in range(height - 1, -1, -1):
            if across[y, x]:
                last = y
            near = out[y, x] or last - y <= width_px
            out[y, x] = near and not hole[y, x] and not exclude[y, x]
            if out[y, x]:
                count += 1
    return count


def membrane_fill(
    values: np.ndarray, hole: np.ndarray, *, max_iter: int = 2000, tol: float = 1e-3
) -> np.ndarray:
    """Harmonic fill of ``hole`` from the values just outside it.

    Parameters
    ----------
    values : (H, W, C) float32 ndarray
        Any units (Lab, RGB, a low-pass layer); values inside ``hole`` are ignored.
    hole : (H, W) bool ndarray
    max_iter, tol : int, float
        Relaxation limits (``tol`` in ``values`` units).

    Returns
    -------
    (H, W, C) float32 ndarray
        ``values`` outside the hole (bit-identical); inside, the solution of
        ``laplacian(f) = 0`` with ``f`` equal to ``values`` on the hole's boundary.
    """
    out = np.ascontiguousarray(values, dtype=np.float32).copy()
    if out.ndim != 3:
        raise ValueError(f"values must be (H, W, C), got {out.shape}")
    membrane_into(out, np.ascontiguousarray(hole, dtype=bool), max_iter, tol)
    return out


@njit(cache=True, nogil=True)
def membrane_into(values, hole, max_iter, tol):
    """:func:`membrane_fill` in place on ``values`` (h, w, c) float32; returns the sweeps done."""
    height, width, channels = values.shape
    count = 0
    ring_sum = np.zeros(channels, np.float64)
    ring_count = 0
    y0, y1, x0, x1 = height, -1, width, -1
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                count += 1
                y0, y1, x0, x1 = min(y0, y), max(y1, y), min(x0, x), max(x1, x)
                continue
            touches = False
            for yy in range(max(0, y - 1), min(height, y + 2)):
                for xx in range(max(0, x - 1), min(width, x + 2)):
                    touches |= hole[yy, xx]
            if touches:
                ring_count += 1
                for c in range(channels):
                    ring_sum[c] += values[y, x, c]
    if count == 0:
        return 0
    ys, xs = mask_pixels(hole)
    if ring_count > 0:  # a flat start halves the sweeps
        for k in range(ys.size):
            for c in range(channels):
                values[ys[k], xs[k], c] = np.float32(ring_sum[c] / ring_count)
    extent = max(y1 - y0, x1 - x0) + 2
    omega = 2.0 / (1.0 + np.sin(np.pi / extent))
    guidance = np.zeros((1, 1, channels), np.float32)
    return sor_sweeps(values, ys, xs, guidance, False, omega, max_iter, tol)


def ring_median_fill(
    values: np.ndarray, hole: np.ndarray, *, ring_px: int = 3, exclude: np.ndarray | None = None
) -> np.ndarray:
    """Fill ``hole`` with the per-channel median of a ring around it (baseline).

    Parameters
    ----------
    values : (H, W, C) float32 ndarray
    hole : (H, W) bool ndarray
    ring_px : int
        Ring width in pixels.
    exclude : (H, W) bool ndarray or None
        Pixels not used for the median.

    Returns
    -------
    (H, W, C) float32 ndarray
        ``values`` outside the hole; the ring median inside.
    """
    out = np.ascontiguousarray(values, dtype=np.float32).copy()
    ring = ring_mask(hole, ring_px, exclude)
    if hole.any() and ring.any():
        out[hole] = np.median(out[ring], axis=0)
    return out


def biharmonic_fill(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` with the smoothest surface that continues the values around it.

    Minimises the sum of the squared 5-point Laplacian over every pixel whose stencil
    touches the hole (a discrete thin-plate energy), with the pixels outside the hole fixed;
    the normal equations are solved directly (banded Cholesky), so the result is exact and
    deterministic. It uses the two rings of pixels around the hole, so the fill meets them
    in value and slope.

    Parameters
    ----------
    values : (H, W, C) float ndarray
        Any units; values inside ``hole`` are ignored. Pixels beyond the crop's edge are
        mirrored.
    hole : (H, W) bool ndarray

    Returns
    -------
    (H, W, C) float32 ndarray
        ``values`` outside the hole (bit-identical); the fill inside. A hole covering the
        whole array is returned unfilled.
    """
    out = np.ascontiguousarray(values, dtype=np.float32).copy()
    hole = np.ascontiguousarray(hole, dtype=bool)
    if not hole.any() or hole.all():  # nothing to fill, or nothing known to fill it from
        return out
    biharmonic_into(out, hole)
    return out


@njit(cache=True, nogil=True)
def biharmonic_into(values, hole):
    """Overwrite ``values`` (h, w, c) float32 inside ``hole`` with its biharmonic fill.

    The normal equations of the least-squares Laplacian system are banded when the unknowns
    are numbered in raster order (a pixel couples only with pixels two rows away at most),
    so a banded Cholesky factorisation solves them exactly in ``n * band**2`` operations,
    without the sparse-matrix setup that cost more than the solve on a spot-sized hole.
    """
    height, width, channels = values.shape
    index = np.full((height, width), -1, np.int64)
    n_unknown = 0
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                index[y, x] = n_unknown
                n_unknown += 1
    if n_unknown == 0 or n_unknown == height * width:
        return
    unknown_y = np.empty(n_unknown, np.int64)
    unknown_x = np.empty(n_unknown, np.int64)
    for y in range(height):
        for x in range(width):
            k = index[y, x]
            if k >= 0:
                unknown_y[k] = y
                unknown_x[k] = x
    # Rows of the Laplacian system: every pixel whose 5-point stencil touches the hole.
    is_row = np.zeros((height, width), np.bool_)
    for k in range(n_unknown):
        y = unknown_y[k]
        x = unknown_x[k]
        is_row[y, x] = True
        if y > 0:
            is_row[y - 1, x] = True
        if y < height - 1:
            is_row[y + 1, x] = True
        if x > 0:
            is_row[y, x - 1] = True
        if x < width - 1:
            is_row[y, x + 1] = True
    row_y = np.empty(height * width, np.int64)
    row_x = np.empty(height * width, np.int64)
    n_rows = 0
    for y in range(height):
        for x in range(width):
            if is_row[y, x]:
                row_y[n_rows] = y
                row_x[n_rows] = x
                n_rows += 1
    cols = np.empty((n_rows, 5), np.int64)
    weights = np.empty((n_rows, 5), np.float64)
    n_local = np.zeros(n_rows, np.int64)
    known = np.zeros((n_rows, channels), np.float64)
    band = 0
    for r in range(n_rows):
        for k in range(5):
            dy = (0, -1, 1, 0, 0)[k]
            dx = (0, 0, 0, -1, 1)[k]
            weight = -4.0 if k == 0 else 1.0
            y = mirror101(row_y[r] + dy, height)
            x = mirror101(row_x[r] + dx, width)
            col = index[y, x]
            if col >= 0:
                cols[r, n_local[r]] = col
                weights[r, n_local[r]] = weight
                n_local[r] += 1
            else:
                for c in range(channels):
                    known[r, c] -= weight * values[y, x, c]
        for i in range(n_local[r]):
            for j in range(n_local[r]):
                band = max(band, cols[r, i] - cols[r, j])
    # Lower band, row by row: matrix[i, j] (j <= i) is stored at rows[i, band + j - i], so
    # every dot product of the factorisation runs over contiguous memory.
    rows = np.zeros((n_unknown, band + 1), np.float64)
    rhs = np.zeros((channels, n_unknown), np.float64)
    for r in range(n_rows):
        for i in range(n_local[r]):
            ci = cols[r, i]
            for c in range(channels):
                rhs[c, ci] += weights[r, i] * known[r, c]
            for j in range(n_local[r]):
                cj = cols[r, j]
                if cj <= ci:
                    rows[ci, band + cj - ci] += weights[r, i] * weights[r, j]
    _banded_cholesky(rows)
    for c in range(channels):
        _banded_solve(rows, rhs[c])
    for k in range(n_unknown):
        for c in range(channels):
            values[unknown_y[k], unknown_x[k], c] = rhs[c, k]


# fastmath lets the band's dot products vectorise; the reassociation is fixed at compile
# time, so the same input still gives the same output on one machine.
@njit(cache=True, nogil=True, fastmath=True)
def _banded_cholesky(rows):
    """In-place ``L L^T`` factor of a symmetric positive definite band stored by rows
    (``rows[i, band + j - i]`` holds entry ``(i, j)``, ``j <= i``)."""
    n, width = rows.shape
    band = width - 1
    for i in range(n):
        row_i = rows[i]
        first = max(0, i - band)  # row j's band starts at j - band <= i - band
        for j in range(first, i + 1):
            row_j = rows[j]
            # Both factors as slices indexed from 0, so the loop vectorises.
            left = row_i[band + first - i : band + j - i]
            right = row_j[band + first - j : band]
            total = row_i[band + j - i]
            for t in range(j - first):
                total -= left[t] * right[t]
            if j == i:
                row_i[band] = np.sqrt(max(total, 1e-300))
            else:
                row_i[band + j - i] = total / row_j[band]


@njit(cache=True, nogil=True, fastmath=True)
def _banded_solve(rows, rhs):
    """Solve ``L L^T x = rhs`` in place for one right-hand side, given the factor ``L``."""
    n, width = rows.shape
    band = width - 1
    for i in range(n):
        first = max(0, i - band)
        factors = rows[i, band + first - i : band]
        known = rhs[first:i]
        total = rhs[i]
        for t in range(i - first):
            total -= factors[t] * known[t]
        rhs[i] = total / rows[i, band]
    # L^T x = y, a column of L^T at a time: x_i is final once the rows below it are done.
    for i in range(n - 1, -1, -1):
        rhs[i] /= rows[i, band]
        value = rhs[i]
        first = max(0, i - band)
        factors = rows[i, band + first - i : band]
        pending = rhs[first:i]
        for t in range(i - first):
            pending[t] -= factors[t] * value
