"""Frequency separation: a Gaussian low-pass layer and its residual (the texture layer).

Built like :func:`skimage.filters.difference_of_gaussians`: a low-pass (:mod:`.blur`) plus
what is left.
``image == low + high`` holds to float32 rounding. Sigmas are in pixels at the working
resolution; callers multiply a face-scale sigma by the image's scale factor
(:mod:`skinretouch.scale`).
"""

from __future__ import annotations

import numpy as np

from .ahead_of_time import njit
from .blur import blur_region_into, gaussian

__all__ = ["high_pass", "high_pass_into", "high_pass_region_into", "split_frequencies"]


def split_frequencies(values: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Split into a low-pass layer and the high-pass residual.

    Parameters
    ----------
    values : (H, W) or (H, W, C) float32 ndarray
        Typically CIE Lab (:func:`skinretouch.kernels.color.rgb_to_lab`).
    sigma : float
        Cut-off: standard deviation in pixels of the Gaussian low-pass.

    Returns
    -------
    low, high : ndarray
        float32, same shape; ``low + high == values`` up to rounding.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    low = gaussian(values, sigma)
    return low, values - low


def high_pass(values: np.ndarray, sigma: float, *, order: int = 1) -> np.ndarray:
    """Residual of a Gaussian low-pass, applied ``order`` times: ``(1 - G_sigma) ** order``.

    ``order=1`` is the residual of :func:`split_frequencies`. ``order=2`` has a sharper
    cut-off: at the same sigma it keeps more of the finest texture relative to what leaks
    in from smooth shapes (a spot's rim), which is why the removal routes use it.

    Parameters
    ----------
    values : (H, W) or (H, W, C) float32 ndarray
    sigma : float
        Standard deviation in pixels of each Gaussian.
    order : int
        How many times the residual is taken (>= 1).

    Returns
    -------
    ndarray
        Same shape, float32.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    residual = np.ascontiguousarray(values, dtype=np.float32)
    for _ in range(order):
        residual = residual - gaussian(residual, sigma)
    return residual


@njit(cache=True, nogil=True)
def high_pass_into(src, taps, order, out):
    """``(1 - G) ** order`` of ``src`` (h, w, c) float32 into ``out``."""
    high_pass_region_into(src, taps, order, 0, 0, out)


@njit(cache=True, nogil=True)
def high_pass_region_into(src, taps, order, y0, x0, out):
    """The box at rows ``y0..``, columns ``x0..`` (the shape of ``out``) of
    :func:`high_pass_into`'s result: each pass is computed on the box grown by the reach
    of the passes still to come, so the values are those of the whole high-pass."""
    height, width, channels = src.shape
    radius = taps.size // 2
    out_height, out_width = out.shape[0], out.shape[1]
    # The residual lives on [ry0, ry1) x [rx0, rx1) of src; it shrinks with each pass.
    ry0, ry1 = max(0, y0 - order * radius), min(height, y0 + out_height + order * radius)
    rx0, rx1 = max(0, x0 - order * radius), min(width, x0 + out_width + order * radius)
    residual = src[ry0:ry1, rx0:rx1].copy()
    for step in range(order):
        grow = (order - step - 1) * radius
        ny0, ny1 = max(0, y0 - grow), min(height, y0 + out_height + grow)
        nx0, nx1 = max(0, x0 - grow), min(width, x0 + out_width + grow)
        low = np.empty((ny1 - ny0, nx1 - nx0, channels), np.float32)
        blur_region_into(residual, taps, ny0 - ry0, nx0 - rx0, low)
        for y in range(ny1 - ny0):
            for x in range(nx1 - nx0):
                for c in range(channels):
                    low[y, x, c] = residual[ny0 - ry0 + y, nx0 - rx0 + x, c] - low[y, x, c]
        residual = low
        ry0, ry1, rx0, rx1 = ny0, ny1, nx0, nx1
    out[:] = residual
