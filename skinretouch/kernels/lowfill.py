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

import cv2
import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg
from numba import njit

from .poisson import solve_poisson

__all__ = ["biharmonic_fill", "membrane_fill", "ring_mask", "ring_median_fill"]


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
    width_px = max(1, int(width_px))
    kernel = np.ones((2 * width_px + 1, 2 * width_px + 1), np.uint8)
    ring = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool) & ~hole
    if exclude is not None:
        ring &= ~exclude
    return ring


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
    if not hole.any():
        return out
    ring = ring_mask(hole, 1)
    if ring.any():
        out[hole] = out[ring].mean(axis=0)  # a flat start halves the sweeps
    solve_poisson(out, hole, None, max_iter=max_iter, tol=tol)
    return out


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
    the normal equations are solved directly (sparse LU), so the result is exact and
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
    unknown_y, unknown_x = np.nonzero(hole)
    n_unknown = unknown_y.size
    index = np.full(hole.shape, -1, dtype=np.int32)
    index[unknown_y, unknown_x] = np.arange(n_unknown, dtype=np.int32)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    row_y, row_x = np.nonzero(cv2.dilate(hole.astype(np.uint8), cross))
    capacity = 25 * row_y.size
    rows = np.empty(capacity, np.int32)
    cols = np.empty(capacity, np.int32)
    weights = np.empty(capacity, np.float64)
    rhs = np.zeros((n_unknown, out.shape[2]), np.float64)
    count = _assemble_normal_equations(
        out, index, row_y.astype(np.int32), row_x.astype(np.int32), rows, cols, weights, rhs
    )
    indptr, indices, data = _to_csc(rows[:count], cols[:count], weights[:count], n_unknown)
    normal = sparse.csc_matrix((data, indices, indptr), shape=(n_unknown, n_unknown))
    # The normal matrix is symmetric: a symmetric fill-reducing order halves the factor time.
    factor = sparse_linalg.splu(normal, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    out[unknown_y, unknown_x] = factor.solve(rhs).astype(np.float32)
    return out


@njit(cache=True, nogil=True)
def _to_csc(rows, cols, weights, n):
    """Compressed sparse columns of a COO matrix, duplicates summed, rows sorted.

    (SciPy's own COO conversion costs more than the factorisation on these small systems.)
    """
    counts = np.zeros(n + 1, np.int64)
    for k in range(cols.size):
        counts[cols[k] + 1] += 1
    for c in range(n):
        counts[c + 1] += counts[c]
    order_rows = np.empty(rows.size, np.int32)
    order_vals = np.empty(rows.size, np.float64)
    fill = counts[:-1].copy()
    for k in range(cols.size):
        slot = fill[cols[k]]
        order_rows[slot] = rows[k]
        order_vals[slot] = weights[k]
        fill[cols[k]] += 1
    indptr = np.zeros(n + 1, np.int32)
    indices = np.empty(rows.size, np.int32)
    data = np.empty(rows.size, np.float64)
    out = 0
    for c in range(n):
        start, stop = counts[c], counts[c + 1]
        segment = np.argsort(order_rows[start:stop], kind="mergesort") + start
        previous = -1
        for k in segment:
            r = order_rows[k]
            if r == previous:
                data[out - 1] += order_vals[k]
            else:
                indices[out] = r
                data[out] = order_vals[k]
                out += 1
                previous = r
        indptr[c + 1] = out
    return indptr, indices[:out], data[:out]


@njit(cache=True, nogil=True)
def _assemble_normal_equations(values, index, row_y, row_x, rows, cols, weights, rhs):
    """Normal equations ``L_u^T L_u x = L_u^T r`` of the least-squares Laplacian system.

    Each row pixel's 5-point Laplacian splits into unknown terms (weights on hole pixels)
    and known terms (moved to the right-hand side ``r``); every pair of its unknown terms
    adds one entry to the normal matrix. Returns the number of (row, col, weight) entries.
    """
    height, width, channels = values.shape
    count = 0
    local_cols = np.empty(5, np.int32)
    local_weights = np.empty(5, np.float64)
    known = np.empty(channels, np.float64)
    for r in range(row_y.size):
        n_local = 0
        known[:] = 0.0
        for k in range(5):
            dy = (0, -1, 1, 0, 0)[k]
            dx = (0, 0, 0, -1, 1)[k]
            weight = -4.0 if k == 0 else 1.0
            y = row_y[r] + dy
            x = row_x[r] + dx
            if y < 0:
                y = -y
            elif y >= height:
                y = 2 * height - 2 - y
            if x < 0:
                x = -x
            elif x >= width:
                x = 2 * width - 2 - x
            col = index[y, x]
            if col >= 0:
                local_cols[n_local] = col
                local_weights[n_local] = weight
                n_local += 1
            else:
                for c in range(channels):
                    known[c] -= weight * values[y, x, c]
        for i in range(n_local):
            for c in range(channels):
                rhs[local_cols[i], c] += local_weights[i] * known[c]
            for j in range(n_local):
                rows[count] = local_cols[i]
                cols[count] = local_cols[j]
                weights[count] = local_weights[i] * local_weights[j]
                count += 1
    return count
