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
        ``values`` outside the hole (bit-identical); the fill inside.
    """
    out = np.ascontiguousarray(values, dtype=np.float32).copy()
    hole = np.ascontiguousarray(hole, dtype=bool)
    if not hole.any():
        return out
    height, width = hole.shape
    unknown_y, unknown_x = np.nonzero(hole)
    index = np.full((height, width), -1, dtype=np.int64)
    index[unknown_y, unknown_x] = np.arange(unknown_y.size)

    # Rows: every pixel whose Laplacian stencil reaches an unknown pixel.
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    row_y, row_x = np.nonzero(cv2.dilate(hole.astype(np.uint8), cross))
    n_rows = row_y.size
    row_ids = np.arange(n_rows)
    stencil = ((0, 0, -4.0), (-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0))
    entries_row, entries_col, entries_val = [], [], []
    rhs = np.zeros((n_rows, out.shape[2]), dtype=np.float64)
    for dy, dx, weight in stencil:
        ny = _mirror_index(row_y + dy, height)
        nx = _mirror_index(row_x + dx, width)
        col = index[ny, nx]
        is_unknown = col >= 0
        entries_row.append(row_ids[is_unknown])
        entries_col.append(col[is_unknown])
        entries_val.append(np.full(int(is_unknown.sum()), weight))
        known = ~is_unknown
        rhs[known] -= weight * out[ny[known], nx[known]].astype(np.float64)
    laplacian = sparse.csr_matrix(
        (np.concatenate(entries_val), (np.concatenate(entries_row), np.concatenate(entries_col))),
        shape=(n_rows, unknown_y.size),
    )
    normal = (laplacian.T @ laplacian).tocsc()
    solution = sparse_linalg.splu(normal).solve(np.asarray(laplacian.T @ rhs))
    out[unknown_y, unknown_x] = solution.astype(np.float32)
    return out


def _mirror_index(i: np.ndarray, n: int) -> np.ndarray:
    i = np.where(i < 0, -i, i)
    return np.where(i >= n, 2 * n - 2 - i, i)
