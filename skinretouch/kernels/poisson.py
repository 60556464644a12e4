"""Poisson image editing on a masked region (successive over-relaxation, jitted).

Solves ``laplacian(f) = guidance`` inside the mask with ``f`` equal to the destination on
the mask's outer boundary (Dirichlet). With the guidance taken from a source image this is
the NORMAL seamless clone (the source's gradients only; the MIXED clone, which keeps the
destination's stronger gradients, would keep a blemish's edges and is deliberately absent).
With zero guidance it is the membrane (harmonic) fill used by :mod:`.lowfill`.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_image, as_mask
from ._jit import sor_sweeps

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
    return sor_sweeps(
        values, ys.astype(np.int32), xs.astype(np.int32), guidance, use_guidance,
        omega, max_iter, tol,
    )


def _laplacian(values: np.ndarray) -> np.ndarray:
    padded = np.pad(values, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    return (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
        - 4.0 * values
    ).astype(np.float32)
