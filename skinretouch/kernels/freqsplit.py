"""Frequency separation: a Gaussian low-pass layer and its residual (the texture layer).

Built like :func:`skimage.filters.difference_of_gaussians`: a low-pass plus what is left.
``image == low + high`` holds to float32 rounding. Sigmas are in pixels at the working
resolution; callers multiply a face-scale sigma by the image's scale factor
(:mod:`skinretouch.scale`).
"""

from __future__ import annotations

import cv2
import numpy as np

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
