"""Jitted helpers shared by several kernel modules (private to :mod:`skinretouch.kernels`).

Index reflection for the two border rules the kernels use, and the successive
over-relaxation sweep behind the Poisson and membrane solvers.
"""

from __future__ import annotations

import numpy as np

from .ahead_of_time import njit

__all__ = ["mirror101", "reflect_index", "sor_sweeps"]


@njit(cache=True, nogil=True)
def reflect_index(i, n):
    """OpenCV's BORDER_REFLECT (``fedcba|abcdef|fedcba``) for any ``i``."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        if i < 0:
            i = -i - 1
        else:
            i = 2 * n - i - 1
    return i


@njit(cache=True, nogil=True)
def mirror101(i, n):
    """Index ``i`` reflected into ``[0, n)`` without repeating the edge (OpenCV's REFLECT_101)."""
    if n == 1:
        return 0
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@njit(cache=True, nogil=True)
def sor_sweeps(values, ys, xs, guidance, use_guidance, omega, max_iter, tol, screen=0.0):
    """Relax ``laplacian(f) = guidance + screen * f`` (guidance zero without ``use_guidance``)
    at the pixels ``ys, xs`` of ``values`` (h, w, c) in place, red-black SOR with factor
    ``omega``, until no value moves by ``tol`` or after ``max_iter`` sweeps; returns the sweeps
    done. ``screen`` > 0 makes the boundary's influence fade with distance."""
    height, width, channels = values.shape
    denominator = 4.0 + screen
    # The pixels of each colour, in their given order: one pass over each colour per sweep
    # (skipping the other colour's pixels inside the loop cost half of every pass), and the
    # same updates in the same order as before.
    order = np.empty(ys.size, np.int64)
    n_red = 0
    for k in range(ys.size):
        if (ys[k] + xs[k]) & 1 == 0:
            order[n_red] = k
            n_red += 1
    n_black = n_red
    for k in range(ys.size):
        if (ys[k] + xs[k]) & 1 == 1:
            order[n_black] = k
            n_black += 1
    sweeps = 0
    for sweep in range(max_iter):
        sweeps = sweep + 1
        largest = 0.0
        # Red-black order: converges like Gauss-Seidel and is independent of scan direction.
        for i in range(ys.size):
            k = order[i]
            y = ys[k]
            x = xs[k]
            up = mirror101(y - 1, height)
            down = mirror101(y + 1, height)
            left = mirror101(x - 1, width)
            right = mirror101(x + 1, width)
            for c in range(channels):
                total = values[up, x, c] + values[down, x, c]
                total += values[y, left, c] + values[y, right, c]
                if use_guidance:
                    total -= guidance[y, x, c]
                change = omega * (total / denominator - values[y, x, c])
                values[y, x, c] += change
                if abs(change) > largest:
                    largest = abs(change)
        if largest < tol:
            break
    return sweeps
