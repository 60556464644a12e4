"""Frequency separation: a Gaussian low-pass layer and its residual (the texture layer).

Built like :func:`skimage.filters.difference_of_gaussians`: a low-pass plus what is left.
``image == low + high`` holds to float32 rounding. Sigmas are in pixels at the working
resolution; callers multiply a face-scale sigma by the image's scale factor
(:mod:`skinretouch.scale`).
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

__all__ = ["gaussian", "high_pass", "masked_gaussian", "split_frequencies"]

# Truncate kernels at this many sigmas (the tails beyond carry < 0.05 % of the weight).
_TRUNCATE = 3.5


def _kernel_size(sigma: float) -> int:
    return 2 * max(1, int(np.ceil(_TRUNCATE * sigma))) + 1


def gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel, edges mirrored.

    Parameters
    ----------
    values : (H, W) or (H, W, C) float32 ndarray
    sigma : float
        Standard deviation in pixels; ``<= 0`` returns a copy.

    Returns
    -------
    ndarray
        Same shape, float32.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    if sigma <= 0:
        return values.copy()
    size = _kernel_size(sigma)
    return cv2.GaussianBlur(
        values, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
    ).reshape(values.shape)


def masked_gaussian(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that only averages ``valid`` pixels (normalised convolution).

    Parameters
    ----------
    values : (H, W) or (H, W, C) float32 ndarray
    valid : (H, W) bool ndarray
        Pixels allowed to contribute.
    sigma : float
        Standard deviation in pixels.

    Returns
    -------
    ndarray
        Same shape as ``values``, float32. Where no valid pixel lies within reach the
        result is 0.
    """
    weight = valid.astype(np.float32)
    if values.ndim == 3:
        summed = gaussian(values * weight[:, :, None], sigma)
        norm = gaussian(weight, sigma)[:, :, None]
    else:
        summed = gaussian(values * weight, sigma)
        norm = gaussian(weight, sigma)
    return np.where(norm > 1e-4, summed / np.maximum(norm, 1e-4), 0.0).astype(np.float32)


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


# --- jitted blurs on small crops (the removal routes' per-spot work) -------------------------
# The same kernels and border as :func:`gaussian` (OpenCV's BORDER_REFLECT, taps from
# ``cv2.getGaussianKernel``), as loops that run without the GIL: a spot's crop is small, so
# one OpenCV call per blur cost more in call overhead than in arithmetic.

_TAPS_CACHE: dict[float, np.ndarray] = {}


def gaussian_taps(sigma: float) -> np.ndarray:
    """1-D taps (float32) of :func:`gaussian` for ``sigma`` px (``[1.0]`` for sigma <= 0)."""
    key = float(sigma)
    taps = _TAPS_CACHE.get(key)
    if taps is None:
        if key <= 0:
            taps = np.ones(1, np.float32)
        else:
            taps = cv2.getGaussianKernel(_kernel_size(key), key).ravel().astype(np.float32)
        _TAPS_CACHE[key] = taps
    return taps


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
def blur_into(src, taps, out):
    """Separable Gaussian of ``src`` (h, w, c) float32 into ``out`` (same shape), reflected."""
    blur_region_into(src, taps, 0, 0, out)


@njit(cache=True, nogil=True)
def blur_region_into(src, taps, y0, x0, out):
    """The box of :func:`blur_into`'s result at rows ``y0..`` and columns ``x0..`` (the
    shape of ``out``), computed from the source rows and columns it needs only.

    A spot's fill needs several blurs only on and around the hole, not over the whole
    window the first blurs need: the values are those of the whole blur, bit for bit.
    """
    height, width, channels = src.shape
    out_height, out_width = out.shape[0], out.shape[1]
    radius = taps.size // 2
    # Every row the vertical pass reads (reflected ones included) lies in [first, last).
    first, last = max(0, y0 - radius), min(height, y0 + out_height + radius)
    padded = np.empty((out_width + 2 * radius) * channels, np.float32)
    across = np.empty((last - first, out_width * channels), np.float32)
    for y in range(first, last):
        # Rows are padded once so the tap loop runs over contiguous memory.
        for i in range(out_width + 2 * radius):
            source = reflect_index(x0 + i - radius, width)
            for c in range(channels):
                padded[i * channels + c] = src[y, source, c]
        line = across[y - first]
        line[:] = 0.0
        for k in range(taps.size):
            tap = taps[k]
            # A slice indexed from 0, so the loop vectorises.
            shifted = padded[k * channels : k * channels + out_width * channels]
            for i in range(out_width * channels):
                line[i] += tap * shifted[i]
    line = np.empty(out_width * channels, np.float32)
    for y in range(out_height):
        line[:] = 0.0
        for k in range(taps.size):
            tap = taps[k]
            source_row = across[reflect_index(y0 + y + k - radius, height) - first]
            for i in range(out_width * channels):
                line[i] += tap * source_row[i]
        for x in range(out_width):
            for c in range(channels):
                out[y, x, c] = line[x * channels + c]


@njit(cache=True, nogil=True)
def masked_blur_into(src, valid, taps, out):
    """Normalised convolution (as :func:`masked_gaussian`) of ``src`` over ``valid`` pixels."""
    masked_blur_region_into(src, valid, taps, 0, 0, out)


@njit(cache=True, nogil=True)
def masked_blur_region_into(src, valid, taps, y0, x0, out):
    """The box at rows ``y0..``, columns ``x0..`` (the shape of ``out``) of
    :func:`masked_blur_into`'s result, as :func:`blur_region_into` computes a box."""
    height, width, channels = src.shape
    radius = taps.size // 2
    # Only the box grown by the blur's reach is read.
    ry0, ry1 = max(0, y0 - radius), min(height, y0 + out.shape[0] + radius)
    rx0, rx1 = max(0, x0 - radius), min(width, x0 + out.shape[1] + radius)
    weighted = np.empty((ry1 - ry0, rx1 - rx0, channels + 1), np.float32)
    for y in range(ry0, ry1):
        for x in range(rx0, rx1):
            w = np.float32(1.0) if valid[y, x] else np.float32(0.0)
            for c in range(channels):
                weighted[y - ry0, x - rx0, c] = src[y, x, c] * w
            weighted[y - ry0, x - rx0, channels] = w
    blurred = np.empty((out.shape[0], out.shape[1], channels + 1), np.float32)
    blur_region_into(weighted, taps, y0 - ry0, x0 - rx0, blurred)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            norm = blurred[y, x, channels]
            for c in range(channels):
                out[y, x, c] = blurred[y, x, c] / norm if norm > 1e-4 else np.float32(0.0)


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
