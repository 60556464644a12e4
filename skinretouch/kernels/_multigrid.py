"""A multigrid-preconditioned solver for the screened membrane over a large hole (private).

Successive over-relaxation removes an error of wavelength L in about L sweeps, so a hole
hundreds of px across (a spot at face scale on a 100-megapixel photo) took a thousand sweeps
or more: 1.5-2 s for one tone layer. Here conjugate gradients, preconditioned by one multigrid
V-cycle, converge in a dozen or so iterations of a few sweeps each.

The equation is the one :func:`._jit.sor_sweeps` relaxes without guidance:
``(4 + screen) u - (sum of the 4 neighbours) = 0`` at every hole pixel, the values outside
the hole fixed. The V-cycle works on a cell-centred hierarchy: a coarse cell is unknown when
any of its 2 x 2 fine cells is, residuals are summed into it and its correction is copied
back to its fine cells (the transpose of that sum), with symmetric red-black Gauss-Seidel
around it: a symmetric positive preconditioner, which conjugate gradients need. (The V-cycle
alone diverged: a coarse cell half outside the hole over-corrects its fine cells, and more
levels compound it; the gradients' step length absorbs that.)
"""

from __future__ import annotations

import numpy as np

from .ahead_of_time import njit

__all__ = ["screened_membrane_multigrid"]

# Red-black Gauss-Seidel sweeps before and after each coarse correction.
SMOOTHING_SWEEPS = 2
# The coarsest level is at most about this many cells along its longer side.
COARSEST_SIDE = 12
MAX_ITERATIONS = 100


@njit(cache=True, nogil=True)
def screened_membrane_multigrid(values, hole, box, screen, tol):
    """Solve ``values`` (h, w, c) float32 in place over ``hole`` (see the module doc) until an
    iteration moves no value by ``tol``; returns the iterations done, or -1 without touching
    ``values`` when the hole reaches the array's edge (reflected there: not symmetric).

    ``box`` is the hole's ``(y0, y1, x0, x1)``, ends inclusive (:func:`.labels.mask_box`).
    """
    height, width, channels = values.shape
    if box[0] == 0 or box[2] == 0 or box[1] == height - 1 or box[3] == width - 1:
        return -1
    # The window is the hole's box grown by the coarsest cell's size, so that every level
    # keeps a ring of known (zero-correction) cells around its hole.
    # (Fewer levels near the array's edge, where that ring does not fit.)
    extent = max(box[1] - box[0], box[3] - box[2]) + 1
    room = min(box[0], box[2], height - 1 - box[1], width - 1 - box[3])
    coarsest = 1
    while extent + 2 * coarsest > COARSEST_SIDE * coarsest and 2 * coarsest <= room:
        coarsest *= 2
    y0, y1 = box[0] - coarsest, box[1] + coarsest + 1
    x0, x1 = box[2] - coarsest, box[3] + coarsest + 1
    holes = [hole[y0:y1, x0:x1].copy()]
    factor = 1
    while factor < coarsest:
        holes.append(_coarser_hole(holes[-1]))
        factor *= 2
    corrections = [np.zeros((m.shape[0], m.shape[1], channels), np.float32) for m in holes]
    sources = [np.zeros((m.shape[0], m.shape[1], channels), np.float32) for m in holes]
    fine = holes[0]
    rows, cols = fine.shape
    residual = np.zeros((rows, cols, channels), np.float64)
    for y in range(rows):
        for x in range(cols):
            if fine[y, x]:
                gy, gx = y0 + y, x0 + x
                for c in range(channels):
                    total = values[gy - 1, gx, c] + values[gy + 1, gx, c] + values[gy, gx - 1, c] + values[gy, gx + 1, c]
                    residual[y, x, c] = total - (4.0 + screen) * values[gy, gx, c]
    direction = _preconditioned(residual, holes, corrections, sources, screen)
    aligned = _dots(residual, direction, fine)
    product = np.zeros((rows, cols, channels), np.float64)
    iterations = 0
    for iteration in range(MAX_ITERATIONS):
        iterations = iteration + 1
        _apply(direction, fine, screen, product)
        curvature = _dots(direction, product, fine)
        largest = 0.0
        for c in range(channels):
            step = aligned[c] / curvature[c] if curvature[c] > 0.0 else 0.0
            for y in range(rows):
                for x in range(cols):
                    if fine[y, x]:
                        change = step * direction[y, x, c]
                        values[y0 + y, x0 + x, c] += np.float32(change)
                        residual[y, x, c] -= step * product[y, x, c]
                        largest = max(largest, abs(change))
        if largest < tol:
            break
        preconditioned = _preconditioned(residual, holes, corrections, sources, screen)
        next_aligned = _dots(residual, preconditioned, fine)
        for c in range(channels):
            ratio = next_aligned[c] / aligned[c] if aligned[c] > 0.0 else 0.0
            for y in range(rows):
                for x in range(cols):
                    if fine[y, x]:
                        direction[y, x, c] = preconditioned[y, x, c] + ratio * direction[y, x, c]
        aligned = next_aligned
    return iterations


@njit(cache=True, nogil=True)
def _dots(a, b, hole):
    out = np.zeros(a.shape[2], np.float64)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            if hole[y, x]:
                for c in range(a.shape[2]):
                    out[c] += a[y, x, c] * b[y, x, c]
    return out


@njit(cache=True, nogil=True)
def _apply(direction, hole, screen, out):
    """The operator on ``direction`` (0 off ``hole``, which keeps off the array's edge)."""
    for y in range(direction.shape[0]):
        for x in range(direction.shape[1]):
            if hole[y, x]:
                for c in range(direction.shape[2]):
                    total = direction[y - 1, x, c] + direction[y + 1, x, c] + direction[y, x - 1, c] + direction[y, x + 1, c]
                    out[y, x, c] = (4.0 + screen) * direction[y, x, c] - total


@njit(cache=True, nogil=True)
def _preconditioned(residual, holes, corrections, sources, screen):
    """One V-cycle from zero on ``residual``: an approximate inverse of the operator."""
    sources[0][:] = residual
    levels = len(holes)
    for level in range(levels - 1):
        corrections[level][:] = 0.0
        level_screen = screen * 4.0**level
        _smooth(corrections[level], holes[level], sources[level], level_screen, SMOOTHING_SWEEPS, False)
        _restrict_residual(corrections[level], holes[level], sources[level], level_screen, holes[level + 1],
                           sources[level + 1])  # fmt: skip
    last = levels - 1
    corrections[last][:] = 0.0
    side = max(holes[last].shape[0], holes[last].shape[1])
    _smooth(corrections[last], holes[last], sources[last], screen * 4.0**last, 4 * side + 20, False)
    _smooth(corrections[last], holes[last], sources[last], screen * 4.0**last, 4 * side + 20, True)
    for level in range(levels - 2, -1, -1):
        _add_coarse(corrections[level + 1], holes[level], corrections[level])
        _smooth(corrections[level], holes[level], sources[level], screen * 4.0**level, SMOOTHING_SWEEPS, True)
    out = np.zeros(residual.shape, np.float64)
    out[:] = corrections[0]
    return out


@njit(cache=True, nogil=True)
def _coarser_hole(hole):
    rows, cols = (hole.shape[0] + 1) // 2, (hole.shape[1] + 1) // 2
    coarse = np.zeros((rows, cols), np.bool_)
    for y in range(hole.shape[0]):
        for x in range(hole.shape[1]):
            if hole[y, x]:
                coarse[y // 2, x // 2] = True
    return coarse


@njit(cache=True, nogil=True)
def _smooth(correction, hole, source, screen, sweeps, backward):
    """Red-black Gauss-Seidel on ``(4 + screen) e - sum(neighbours) = source`` over ``hole``
    (``e`` is 0 off it, and the hole keeps off the array's edge); black first if ``backward``,
    so that a pre- and a post-smoothing make a symmetric pair."""
    rows, cols, channels = correction.shape
    denominator = 4.0 + screen
    for _ in range(sweeps):
        for turn in range(2):
            colour = 1 - turn if backward else turn
            for y in range(1, rows - 1):
                for x in range(1 + (y + 1 + colour) % 2, cols - 1, 2):
                    if not hole[y, x]:
                        continue
                    for c in range(channels):
                        total = correction[y - 1, x, c] + correction[y + 1, x, c]
                        total += correction[y, x - 1, c] + correction[y, x + 1, c]
                        correction[y, x, c] = (total + source[y, x, c]) / denominator


@njit(cache=True, nogil=True)
def _restrict_residual(correction, hole, source, screen, coarse_hole, coarse_source):
    """The residual of ``correction`` summed over each coarse cell."""
    rows, cols, channels = correction.shape
    coarse_source[:] = 0.0
    for y in range(rows):
        for x in range(cols):
            if not hole[y, x]:
                continue
            for c in range(channels):
                total = correction[y - 1, x, c] + correction[y + 1, x, c]
                total += correction[y, x - 1, c] + correction[y, x + 1, c]
                coarse_source[y // 2, x // 2, c] += source[y, x, c] + total - (4.0 + screen) * correction[y, x, c]


@njit(cache=True, nogil=True)
def _add_coarse(coarse, hole, fine):
    """Add each coarse cell's value to its fine cells on ``hole`` (the transpose of the sum)."""
    for y in range(fine.shape[0]):
        for x in range(fine.shape[1]):
            if hole[y, x]:
                for c in range(fine.shape[2]):
                    fine[y, x, c] += coarse[y // 2, x // 2, c]
