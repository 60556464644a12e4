"""Poisson image editing on a masked region (successive over-relaxation, jitted).

Solves ``laplacian(f) = guidance`` inside the mask with ``f`` equal to the destination on
the mask's outer boundary (Dirichlet). With the guidance taken from a source image this is
the NORMAL seamless clone (the source's gradients only; the MIXED clone, which keeps the
destination's stronger gradients, would keep a blemish's edges and is deliberately absent).
With zero guidance it is the membrane (harmonic) fill used by :mod:`.lowfill`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._checks import as_image, as_mask

__all__ = ["poisson_blend", "solve_poisson"]


def poisson_blend(
    src: np.ndarray,
    dst: np.ndarray,
    mask: np.ndarray,
    *,
    max_iter: int = 2000,
    tol: float = 1e-4,
) -> np.ndarray:
    """Seamless NORMAL clone of ``src`` into ``dst`` inside ``mask``.

    Parameters
    ----------
    src, dst : (H, W, 3) float ndarray
        Same shape, values in ``[0, 1]``. ``src`` gives the gradients inside the mask,
        ``dst`` the values around it.
    mask : (H, W) bool ndarray
        Pixels to solve for. Mask pixels on the image border use the mirrored neighbour.
    max_iter : int
        Most relaxation sweeps.
    tol : float
        Stop when no pixel changes by more than this in a sweep (value units).

    Returns
    -------
    (H, W, 3) float32 ndarray
        ``dst`` outside the mask (bit-identical); inside, the solution clipped to ``[0, 1]``.
    """
    src = as_image(src, "src")
    dst = as_image(dst, "dst")
    if src.shape != dst.shape:
        raise ValueError(f"src and dst must have the same shape, got {src.shape} and {dst.shape}")
    mask = as_mask(mask, dst.shape)
    guidance = _laplacian(src)
    out = dst.copy()
    out[mask] = src[mask] + (dst[mask].mean(axis=0) - src[mask].mean(axis=0) if mask.any() else 0)
    solve_poisson(out, mask, guidance, max_iter=max_iter, tol=tol)
    result = dst.copy()
    result[mask] = np.clip(out[mask], 0.0, 1.0)
    return result


def solve_poisson(
    values: np.ndarray,
    mask: np.ndarray,
    guidance: np.ndarray | None = None,
    *,
    max_iter: int = 2000,
    tol: float = 1e-4,
) -> int:
    """Solve ``laplacian(f) = guidance`` on ``mask`` in place (Dirichlet from outside).

    Parameters
    ----------
    values : (H, W, C) float32 C-contiguous ndarray
        Boundary values outside the mask; the initial guess inside. Overwritten inside.
    mask : (H, W) bool ndarray
    guidance : (H, W, C) float32 ndarray or None
        The 5-point Laplacian wanted at each mask pixel; ``None`` is zero (membrane fill).
    max_iter, tol : see :func:`poisson_blend`.

    Returns
    -------
    int
        Sweeps done.
    """
    if values.dtype != np.float32 or not values.flags.c_contiguous or values.ndim != 3:
        raise TypeError("values must be a C-contiguous (H, W, C) float32 array")
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return 0
    if guidance is None:
        guidance = np.zeros((1, 1, values.shape[2]), dtype=np.float32)
        use_guidance = False
    else:
        guidance = np.ascontiguousarray(guidance, dtype=np.float32)
        use_guidance = True
    # Over-relaxation factor close to optimal for a region of this extent.
    extent = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 2
    omega = 2.0 / (1.0 + np.sin(np.pi / extent))
    return _sor(
        values, ys.astype(np.int32), xs.astype(np.int32), guidance, use_guidance,
        omega, max_iter, tol,
    )


def _laplacian(values: np.ndarray) -> np.ndarray:
    padded = np.pad(values, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    return (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
        - 4.0 * values
    ).astype(np.float32)


@njit(cache=True, nogil=True)
def _mirror101(i, n):
    """Index ``i`` reflected into ``[0, n)`` without repeating the edge (OpenCV's REFLECT_101)."""
    if n == 1:
        return 0
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@njit(cache=True, nogil=True)
def _sor(values, ys, xs, guidance, use_guidance, omega, max_iter, tol):
    height, width, channels = values.shape
    sweeps = 0
    for sweep in range(max_iter):
        sweeps = sweep + 1
        largest = 0.0
        # Red-black order: converges like Gauss-Seidel and is independent of scan direction.
        for parity in range(2):
            for k in range(ys.size):
                y = ys[k]
                x = xs[k]
                if (y + x) & 1 != parity:
                    continue
                up = _mirror101(y - 1, height)
                down = _mirror101(y + 1, height)
                left = _mirror101(x - 1, width)
                right = _mirror101(x + 1, width)
                for c in range(channels):
                    total = values[up, x, c] + values[down, x, c]
                    total += values[y, left, c] + values[y, right, c]
                    if use_guidance:
                        total -= guidance[y, x, c]
                    change = omega * (0.25 * total - values[y, x, c])
                    values[y, x, c] += change
                    if abs(change) > largest:
                        largest = abs(change)
        if largest < tol:
            break
    return sweeps
