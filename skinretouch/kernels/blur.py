"""Gaussian blurs: the one blur family every kernel uses.

:func:`gaussian` (OpenCV, mirrored edges) and its normalised-convolution form
:func:`weighted_gaussian` (:func:`masked_gaussian` is its 0-or-1 case) work on whole arrays;
detection and removal both use them. :func:`blur_into` and friends compute the same values in
jitted loops that run without the GIL, for the removal routes' small crops, where one OpenCV
call per blur cost more in call overhead than in arithmetic. Sigmas are in pixels at the
working resolution.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ._jit import reflect_index
from .ahead_of_time import njit
from .tuning import BLUR_TRUNCATE_SIGMAS, TAPS_CACHE_SIZE, WIDE_SHRINK_SIGMAS

__all__ = [
    "blur_into",
    "blur_region_into",
    "gaussian",
    "gaussian_taps",
    "masked_blur_into",
    "masked_blur_region_into",
    "masked_gaussian",
    "weighted_gaussian",
]


def _kernel_size(sigma: float) -> int:
    return 2 * max(1, int(np.ceil(BLUR_TRUNCATE_SIGMAS * sigma))) + 1


def gaussian(values: np.ndarray, sigma: float, *, approximate_wide: bool = False) -> np.ndarray:
    """Gaussian blur of each channel, edges mirrored.

    Parameters
    ----------
    values : (H, W) or (H, W, C) float32 ndarray
    sigma : float
        Standard deviation in pixels; ``<= 0`` returns a copy.
    approximate_wide : bool
        For sigmas of 6 px and more, blur an area-shrunk copy and interpolate back (a wide
        average has no fine detail; detection's backgrounds use this, removal never does).

    Returns
    -------
    ndarray
        Same shape, float32.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    if sigma <= 0:
        return values.copy()
    factor = int(sigma // WIDE_SHRINK_SIGMAS)
    height, width = values.shape[:2]
    if approximate_wide and factor >= 2 and min(height, width) >= 8 * factor:
        small = cv2.resize(values, (max(1, round(width / factor)), max(1, round(height / factor))),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        # The area shrink already averaged over ~factor px: take that out of the sigma.
        inner = np.sqrt(max(sigma**2 - factor**2 / 12.0, 0.25)) / factor
        blurred = gaussian(small, inner)
        return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR).reshape(values.shape)
    size = _kernel_size(sigma)
    return cv2.GaussianBlur(
        values, (size, size), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
    ).reshape(values.shape)


def weighted_gaussian(
    values: np.ndarray,
    weights: np.ndarray,
    sigma: float,
    *,
    min_weight: float = 1e-3,
    empty: str = "plain",
    approximate_wide: bool = False,
) -> np.ndarray:
    """Gaussian average of ``values`` over weighted pixels only (normalised convolution).

    Parameters
    ----------
    values : (H, W) or (H, W, C) float32 ndarray
    weights : (H, W) float or bool ndarray
        Sample weights in [0, 1]; 0 excludes a pixel from every average.
    sigma : float
        Standard deviation in pixels (``<= 0``: no blur, only the weighting).
    min_weight : float
        Below this blurred weight a pixel has no weighted neighbour within reach ...
    empty : {"plain", "zero"}
        ... and gets the plain Gaussian average, or 0.
    approximate_wide : bool
        As in :func:`gaussian`.

    Returns
    -------
    ndarray
        Same shape as ``values``, float32.
    """
    if empty not in ("plain", "zero"):
        raise ValueError(f"empty must be 'plain' or 'zero', got {empty!r}")
    values = np.ascontiguousarray(values, dtype=np.float32)
    weight = np.ascontiguousarray(weights, dtype=np.float32)
    if weight.shape != values.shape[:2]:
        raise ValueError(f"weights shape {weight.shape} does not match values {values.shape[:2]}")
    spread = weight[:, :, None] if values.ndim == 3 else weight
    summed = gaussian(values * spread, sigma, approximate_wide=approximate_wide)
    norm = gaussian(weight, sigma, approximate_wide=approximate_wide)
    if values.ndim == 3:
        norm = norm[:, :, None]
    fallback = gaussian(values, sigma, approximate_wide=approximate_wide) if empty == "plain" else 0.0
    return np.where(norm > min_weight, summed / np.maximum(norm, min_weight), fallback).astype(np.float32)


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
    return weighted_gaussian(values, valid, sigma, min_weight=1e-4, empty="zero")


# --- jitted blurs on small crops (the removal routes' per-spot work) -------------------------
# The same kernels and border as :func:`gaussian` (OpenCV's BORDER_REFLECT, taps from
# ``cv2.getGaussianKernel``).

def gaussian_taps(sigma: float) -> np.ndarray:
    """1-D taps (float32, read-only) of :func:`gaussian` for ``sigma`` px (``[1.0]`` for sigma <= 0).

    Sigmas come from a continuous face scale, so the cache is bounded: a long-running
    worker sees many distinct ones.
    """
    return _cached_taps(float(sigma))


@functools.lru_cache(maxsize=TAPS_CACHE_SIZE)
def _cached_taps(sigma: float) -> np.ndarray:
    if sigma <= 0:
        taps = np.ones(1, np.float32)
    else:
        taps = cv2.getGaussianKernel(_kernel_size(sigma), sigma).ravel().astype(np.float32)
    taps.flags.writeable = False  # shared between callers and threads
    return taps


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
