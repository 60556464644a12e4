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
    height, width, channels = src.shape
    radius = taps.size // 2
    padded = np.empty((width + 2 * radius) * channels, np.float32)
    across = np.empty((height, width * channels), np.float32)
    for y in range(height):
        # Rows are padded once so the tap loop runs over contiguous memory.
        for i in range(width + 2 * radius):
            source = reflect_index(i - radius, width)
            for c in range(channels):
                padded[i * channels + c] = src[y, source, c]
        line = across[y]
        line[:] = 0.0
        for k in range(taps.size):
            tap = taps[k]
            offset = k * channels
            for i in range(width * channels):
                line[i] += tap * padded[offset + i]
    for y in range(height):
        line = np.zeros(width * channels, np.float32)
        for k in range(taps.size):
            tap = taps[k]
            source_row = across[reflect_index(y + k - radius, height)]
            for i in range(width * channels):
                line[i] += tap * source_row[i]
        for x in range(width):
            for c in range(channels):
                out[y, x, c] = line[x * channels + c]


@njit(cache=True, nogil=True)
def masked_blur_into(src, valid, taps, out):
    """Normalised convolution (as :func:`masked_gaussian`) of ``src`` over ``valid`` pixels."""
    height, width, channels = src.shape
    weighted = np.empty((height, width, channels + 1), np.float32)
    for y in range(height):
        for x in range(width):
            w = np.float32(1.0) if valid[y, x] else np.float32(0.0)
            for c in range(channels):
                weighted[y, x, c] = src[y, x, c] * w
            weighted[y, x, channels] = w
    blurred = np.empty_like(weighted)
    blur_into(weighted, taps, blurred)
    for y in range(height):
        for x in range(width):
            norm = blurred[y, x, channels]
            for c in range(channels):
                out[y, x, c] = blurred[y, x, c] / norm if norm > 1e-4 else np.float32(0.0)


@njit(cache=True, nogil=True)
def high_pass_into(src, taps, order, out):
    """``(1 - G) ** order`` of ``src`` (h, w, c) float32 into ``out``."""
    residual = src.copy()
    low = np.empty_like(src)
    for _ in range(order):
        blur_into(residual, taps, low)
        for y in range(src.shape[0]):
            for x in range(src.shape[1]):
                for c in range(src.shape[2]):
                    residual[y, x, c] -= low[y, x, c]
    out[:] = residual
